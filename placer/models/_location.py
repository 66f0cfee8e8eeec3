"""Where things are: a provider's region (or an on-prem data centre) and its jurisdictions."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from placer.models._base import Model

Provider = Literal["onprem", "aws", "gcp", "azure"]

# EU member states and the three further EEA states, by ISO 3166-1 alpha-2 code (as of 2025).
EU_COUNTRIES = frozenset(
    {"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "IE", "IT",
     "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"}
)
EEA_COUNTRIES = EU_COUNTRIES | {"IS", "LI", "NO"}

# Every officially assigned ISO 3166-1 alpha-2 code (249, as published by the ISO 3166
# Maintenance Agency, https://www.iso.org/iso-3166-country-codes.html). A country outside this
# list ("UK", "EL") would make `country:GB` or `jurisdiction:EU` miss a site that is there.
ISO_COUNTRIES = frozenset(
    """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""".split()  # noqa: SIM905
)
# Codes people write for a country whose ISO code is another.
_COMMON_MISTAKES = {"UK": "GB", "EL": "GR", "EN": "GB"}


def check_country(code: str) -> str:
    """An ISO 3166-1 alpha-2 code, or ``ValueError`` saying which code was meant.

    >>> check_country("DE")
    'DE'
    """
    if code in ISO_COUNTRIES:
        return code
    hint = _COMMON_MISTAKES.get(code)
    raise ValueError(
        f"{code!r} is not an ISO 3166-1 alpha-2 country code"
        + (f"; did you mean {hint}?" if hint and hint != code else "")
    )


CountryCode = Annotated[
    str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2"),
    AfterValidator(check_country),
]


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
    country: CountryCode
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
