"""Where things are: a provider's region (or an on-prem data centre) and its jurisdictions."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from placer.models._base import Model

Provider = Literal["onprem", "aws", "gcp", "azure"]

# EU member states and the three further EEA states, by ISO 3166-1 alpha-2 code (as of 2025).
EU_COUNTRIES = frozenset(
    {"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "IE", "IT",
     "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"}
)
EEA_COUNTRIES = EU_COUNTRIES | {"IS", "LI", "NO"}


def jurisdictions_of(country: str) -> frozenset[str]:
    """The jurisdictions a country belongs to: itself, plus ``EU``/``EEA`` where it is a member."""
    out = {country.upper()}
    if country.upper() in EU_COUNTRIES:
        out.add("EU")
    if country.upper() in EEA_COUNTRIES:
        out.add("EEA")
    return frozenset(out)


class Location(Model):
    """A concrete place data can live and jobs can run: ``aws:eu-central-1``, ``onprem:fra-dc1``."""

    provider: Provider
    region: str = Field(min_length=1)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    jurisdictions: frozenset[str] = Field(
        default=frozenset(),
        description="e.g. EU, EEA, US, the country code; derived from the country when empty",
    )
    continent: str | None = None

    def model_post_init(self, context: object, /) -> None:
        # Derived, never contradicted: the country's own jurisdictions are always included.
        merged = self.jurisdictions | jurisdictions_of(self.country)
        if merged != self.jurisdictions:
            object.__setattr__(self, "jurisdictions", merged)

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.region}"

    def __str__(self) -> str:
        return self.key
