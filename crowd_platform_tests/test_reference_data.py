"""Checks on the static reference tables in crowd_platform/reference_data."""

from pathlib import Path

import polars as pl
import pytest

REF_DIR = Path(__file__).resolve().parent.parent / "crowd_platform" / "reference_data"
MCC_CSV = REF_DIR / "mcc_countries.csv"
TAC_CSV = REF_DIR / "tac_classes.csv"

DEVICE_CLASSES = {
    "smartphone",
    "feature_phone",
    "iot_module",
    "router",
    "car",
    "meter",
    "wearable",
}
MACHINE_CLASSES = {"iot_module", "router", "car", "meter"}


@pytest.fixture(scope="module")
def mcc() -> pl.DataFrame:
    return pl.read_csv(
        MCC_CSV,
        schema_overrides={
            "mcc": pl.String,
            "country_iso2": pl.String,
            "country_name": pl.String,
        },
    )


@pytest.fixture(scope="module")
def tac() -> pl.DataFrame:
    return pl.read_csv(
        TAC_CSV,
        schema_overrides={
            "tac_prefix": pl.String,
            "device_class": pl.String,
            "description": pl.String,
        },
    )


def test_mcc_columns_and_size(mcc: pl.DataFrame) -> None:
    assert mcc.columns == ["mcc", "country_iso2", "country_name"]
    assert 200 <= mcc.height <= 300
    assert mcc.null_count().row(0) == (0, 0, 0)


def test_mcc_codes_are_unique_three_digit_strings(mcc: pl.DataFrame) -> None:
    assert mcc["mcc"].dtype == pl.String
    assert mcc["mcc"].str.contains(r"^\d{3}$").all()
    assert mcc["mcc"].n_unique() == mcc.height
    # leading zero kept as text
    assert "001" in mcc["mcc"].to_list()


def test_mcc_country_codes(mcc: pl.DataFrame) -> None:
    assert mcc["country_iso2"].str.contains(r"^[A-Z]{2}$").all()
    countries = mcc.filter(pl.col("country_iso2") != "XX")["country_iso2"]
    assert countries.n_unique() >= 200


@pytest.mark.parametrize(
    ("code", "iso2"),
    [
        ("240", "SE"),
        ("238", "DK"),
        ("242", "NO"),
        ("244", "FI"),
        ("262", "DE"),
        ("234", "GB"),
        ("235", "GB"),
        ("260", "PL"),
        ("204", "NL"),
        ("208", "FR"),
        ("214", "ES"),
        ("222", "IT"),
        ("228", "CH"),
        ("232", "AT"),
        ("206", "BE"),
        ("248", "EE"),
        ("247", "LV"),
        ("246", "LT"),
        ("274", "IS"),
        ("272", "IE"),
        ("310", "US"),
        ("311", "US"),
        ("312", "US"),
        ("313", "US"),
        ("314", "US"),
        ("315", "US"),
        ("316", "US"),
        ("460", "CN"),
        ("404", "IN"),
        ("405", "IN"),
        ("406", "IN"),
        ("440", "JP"),
        ("441", "JP"),
        ("302", "CA"),
        ("505", "AU"),
        ("724", "BR"),
        ("655", "ZA"),
    ],
)
def test_common_mccs(mcc: pl.DataFrame, code: str, iso2: str) -> None:
    got = mcc.filter(pl.col("mcc") == code)["country_iso2"].to_list()
    assert got == [iso2]


def test_international_codes(mcc: pl.DataFrame) -> None:
    row = mcc.filter(pl.col("mcc") == "901")
    assert row.height == 1
    assert row["country_iso2"][0] == "XX"
    assert "international" in row["country_name"][0].lower()


def test_tac_columns_and_size(tac: pl.DataFrame) -> None:
    assert tac.columns == ["tac_prefix", "device_class", "description"]
    assert 12 <= tac.height <= 60
    assert tac.null_count().row(0) == (0, 0, 0)


def test_tac_prefixes_are_digit_strings(tac: pl.DataFrame) -> None:
    assert tac["tac_prefix"].dtype == pl.String
    assert tac["tac_prefix"].str.contains(r"^\d{6,8}$").all()
    assert tac["tac_prefix"].n_unique() == tac.height


def test_tac_device_classes(tac: pl.DataFrame) -> None:
    classes = set(tac["device_class"].to_list())
    assert classes <= DEVICE_CLASSES
    # every machine class is represented, plus at least one human class
    assert classes >= MACHINE_CLASSES
    assert classes - MACHINE_CLASSES
