"""``python -m service`` runs the ``enclave`` command line."""

from service.cli import main

main()
