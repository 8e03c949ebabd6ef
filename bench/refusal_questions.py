# ruff: noqa: E501  (questions are data; one per line reads best)
"""Unanswerable questions over the CUAD contracts, written for measuring refusals.

Three kinds, ten of each per set: off-topic (nothing in any contract), contract-shaped questions about
agreements and parties that are not in the corpus, and questions about real CUAD agreements that ask
for something those agreements do not contain. ``CALIBRATION`` chooses the not-found thresholds;
``REPORT`` is held out and only measured.
"""

from __future__ import annotations

CALIBRATION: dict[str, list[str]] = {
    "off_topic": [
        "What is the boiling point of mercury at sea level?",
        "Who won the 1998 FIFA World Cup final?",
        "How many moons does Jupiter have?",
        "What is a good recipe for sourdough bread?",
        "Which enzyme unwinds DNA during replication?",
        "What is the capital city of Australia?",
        "How do I reset my home Wi-Fi router?",
        "Who painted the ceiling of the Sistine Chapel?",
        "What is the airspeed of an unladen swallow?",
        "How many calories are in a banana?",
    ],
    "absent_party": [
        "Which state's law governs the Franchise Agreement between Zorblax Quantum Foods Inc. and Pelican Harbor Llamas LLC?",
        "What is the royalty rate in the License Agreement between Glimmerstone Robotics GmbH and Yellowfin Umbrella Co.?",
        "When does the Supply Agreement between Quokka Ceramics Ltd. and Nimbus Tortoise Holdings expire?",
        "Can the Hosting Agreement between Vantablue Aerospace Inc. and Marigold Puffin Media be assigned?",
        "What is the cap on liability in the Services Agreement between Octarine Bakery Corp. and Fjordlight Kayaks AS?",
        "How long is the non-compete in the Consulting Agreement between Brambleworth Analytics and Dr. Ottoline Vasquez-Pemberton?",
        "What insurance must Krakenfield Breweries maintain under its Distribution Agreement with Sunnyglade Orchards?",
        "What is the renewal term of the Reseller Agreement between Pixelmoth Studios and Tundra Walrus Logistics?",
        "Does the Sponsorship Agreement between Hummingbolt Cycles and the Lemonfrost Curling Club give audit rights?",
        "What notice is needed to terminate the Endorsement Agreement between Ravenquill Cosmetics and Jasper Moonwhistle?",
    ],
    "absent_fact": [
        "What is the dress code for staff under the Co-Branding Agreement between Snap Technologies, Inc. and United Airlines, Inc.?",
        "How many parking spaces does Cisco provide under the Nonexclusive Value Added Distributor Agreement with ScanSource?",
        "What is the office Wi-Fi password in the Consulting Agreement between Slinger Bag Inc. and Aitan Zacharin?",
        "What colour is the logo of Papa John's according to the Endorsement Agreement with ABG-Shaq, LLC?",
        "What is the home address of the CEO of Emdeon Corporation in the Content License Agreement with WebMD?",
        "How many vacation days does the consultant get in the Consulting Agreement between Aduro Biotech and IREYA B.V.?",
        "What was the weather on the signing day of the Sponsorship Agreement between Excite, Inc. and N2K, Inc.?",
        "What is the favourite sports team of the parties to the Promotion Agreement between CNET, Inc. and Cyberian Outpost?",
        "Which hospital must Bellicum use for employee health checks under the Supply Agreement with Miltenyi Biotec?",
        "What cafeteria menu is required by the E-Business Hosting Agreement between IBM and The Quantum Group?",
    ],
}

REPORT: dict[str, list[str]] = {
    "off_topic": [
        "What is the melting point of tungsten?",
        "Who wrote the novel Pride and Prejudice?",
        "How tall is Mount Kilimanjaro?",
        "What is the best way to train a puppy to sit?",
        "Which planet has the longest day in the solar system?",
        "How do vaccines trigger an immune response?",
        "What is the population of Iceland?",
        "Who composed the Four Seasons violin concertos?",
        "How long should I boil an egg for a soft yolk?",
        "What causes the northern lights?",
    ],
    "absent_party": [
        "Which jurisdiction's law governs the Joint Venture Agreement between Copperwing Seaplanes Ltd. and Orchid Lantern Foods?",
        "What is the minimum purchase commitment in the Supply Agreement between Velvetfrog Textiles and Haskap Ridge Mining?",
        "When does the License Agreement between Saffronbeam Software and Grizzlyport Ferries terminate?",
        "Is there a most favoured nation clause in the Distribution Agreement between Pumicestone Labs and Wobbleberry Toys?",
        "What is the liquidated damages amount in the Construction Agreement between Ironquail Builders and Pinecrest Otter Park?",
        "Who owns the intellectual property under the Development Agreement between Lumenfox Biotech and Starling Fjord Capital?",
        "What is the exclusivity period in the Marketing Agreement between Cobaltreed Wines and Frostpetal Hotels?",
        "How much is the annual fee under the Hosting Agreement between Thimbleweed Data and Crescent Yak Outfitters?",
        "Can the Franchise Agreement between Mosswhistle Coffee and Dr. Ezekiel Barnaby-Quill be terminated for convenience?",
        "What warranty period applies under the Manufacturing Agreement between Glowtern Optics and Basaltview Drones?",
    ],
    "absent_fact": [
        "What is the dress code under the Marketing Affiliate Agreement between Birch First Global Investments and Mount Kowledge Holdings?",
        "How many parking spaces does PSiTech Corporation get under the Website Content License Agreement with Empirical Ventures?",
        "What is the CEO's shoe size in the Co-Branding And Services Agreement between RSL COM PrimeCall and deltathree.com?",
        "What cafeteria menu does the Development Agreement between Howmedica Osteonics and Conformis require?",
        "What is the favourite colour of Dwayne Wade in the Collaboration & Endorsement Agreement with The Naked Brands Group?",
        "Which airline must employees fly under the Channel Partner Reseller Agreement between iPass and Pareteum?",
        "What is the office Wi-Fi password in the Promotion Agreement between BookingEntertainment.com and VNUE, Inc.?",
        "How many vacation days does the consultant get under the Consulting Agreement between Immunotolerance, Inc. and Alan Crane?",
        "What pet policy applies in the Sponsorship Agreement between Excite, Inc. and Vitamin Shoppe Industries?",
        "What was the weather on the signing day of the Supply Agreement between Miltenyi Biotec and Bellicum Pharmaceuticals?",
    ],
}
