"""Names for generated organisations: plausible ones for demos, awkward ones for tests."""

from __future__ import annotations

import itertools
import random

#: Names an edge-case org starts with (as many as fit): each one breaks something naive.
AWKWARD_NAMES = (
    "Müller & Söhne, GmbH",
    'Acme "Rocket" Co',
    "=SUM(1+1) Holdings",
    "Globex Corporation",
    "Northwind\nTraders",
    "Globex Corporation",
    "+Plus Logistics",
    "Ørsted Østergaard A/S",
    "株式会社サンプル",
    "@Home Services",
    "-Minus Labs",
)
#: Words of the generated "First Second Suffix" names.
NAME_WORDS = (
    ("Blue", "Granite", "Swift", "Harbor", "Pioneer", "Summit", "Cedar", "Lumen", "Atlas", "Nova"),
    ("Analytics", "Foods", "Freight", "Health", "Media", "Robotics", "Energy", "Retail", "Labs"),
    ("Inc.", "LLC", "Ltd", "GmbH", "Group", "Co", "S.A.", "Pty Ltd"),
)
#: (name, category) of an edge-case org's integrations: quotes, commas, a non-ASCII arrow.
AWKWARD_INTEGRATIONS = (
    ("Salesforce Sync", "CRM"),
    ("Slack Notifier", "Communication"),
    ("SFTP Order Import", "File Transfer"),
    ("HubSpot ↔ NetSuite", "ERP"),
    ("Shopify Orders", "E-commerce"),
    ("Jira, Confluence Bridge", "Project Management"),
    ('Zendesk "Tickets"', "Support"),
    ("QuickBooks Invoices", "Accounting"),
)
#: The same integrations as a real marketplace would name them (same count and order).
PLAIN_INTEGRATIONS = (
    ("Salesforce Sync", "CRM"),
    ("Slack Notifier", "Communication"),
    ("SFTP Order Import", "File Transfer"),
    ("HubSpot to NetSuite", "ERP"),
    ("Shopify Orders", "E-commerce"),
    ("Jira Confluence Bridge", "Project Management"),
    ("Zendesk Tickets", "Support"),
    ("QuickBooks Invoices", "Accounting"),
)


def awkward_names(rng: random.Random, count: int) -> list[str]:
    """:data:`AWKWARD_NAMES` first, then random (possibly repeated) generated names."""
    names = list(AWKWARD_NAMES[:count])
    while len(names) < count:
        first, second, suffix = (rng.choice(words) for words in NAME_WORDS)
        names.append(f"{first} {second} {suffix}")
    return names


def plausible_names(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct "First Second Suffix" company names (720 before any repeats).

    Past 720 customers a name gets a numeral (``"Blue Foods Ltd 2"``), so names stay unique.
    """
    combos = [" ".join(words) for words in itertools.product(*NAME_WORDS)]
    names: list[str] = []
    for round_ in itertools.count(1):
        if len(names) >= count:
            break
        picked = rng.sample(combos, min(count - len(names), len(combos)))
        names.extend(picked if round_ == 1 else [f"{name} {round_}" for name in picked])
    return names
