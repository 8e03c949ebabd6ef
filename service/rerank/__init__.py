"""Optional second-stage ranking of retrieved candidates: a site's reranker model, or MMR for diversity."""
