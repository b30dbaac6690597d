"""A small generated Rossmann dataset in the Kaggle file formats, with structure a model can learn.

A few stores over about a year: sales depend on the store, the day of week, promos, the days around
state holidays, school holidays and rain; stores close on Sundays, holidays and now and then for a
refurbishment. Test rows are the 48 days after train, with a few closed and a few blank ``Open``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.workspace import write_csv

WEATHER_HEADER = ["Date", "Max_TemperatureC", "Mean_TemperatureC", "Min_TemperatureC", "Dew_PointC", "MeanDew_PointC",
                  "Min_DewpointC", "Max_Humidity", "Mean_Humidity", "Min_Humidity", "Max_Sea_Level_PressurehPa",
                  "Mean_Sea_Level_PressurehPa", "Min_Sea_Level_PressurehPa", "Max_VisibilityKm", "Mean_VisibilityKm",
                  "Min_VisibilitykM", "Max_Wind_SpeedKm_h", "Mean_Wind_SpeedKm_h", "Max_Gust_SpeedKm_h",
                  "Precipitationmm", "CloudCover", "Events", "WindDirDegrees"]
STATES = ["NW", "BY", "HE", "HB,NI"]
HOLIDAYS = {"01-01": "a", "05-01": "a", "10-03": "a", "04-18": "b", "04-03": "b", "04-06": "b", "12-25": "c",
            "12-26": "c", "06-04": "a", "05-14": "a"}


def _stores(n_stores: int, rng) -> pd.DataFrame:
    ids = np.arange(1, n_stores + 1)
    promo2 = (ids % 2 == 0).astype(int)
    return pd.DataFrame({
        "Store": ids,
        "StoreType": np.array(["a", "b", "c", "d"])[ids % 4],
        "Assortment": np.array(["a", "c", "b"])[ids % 3],
        "CompetitionDistance": np.where(ids == 3, np.nan, rng.integers(50, 20000, n_stores)),
        "CompetitionOpenSinceMonth": np.where(ids % 3 == 0, np.nan, rng.integers(1, 13, n_stores)),
        "CompetitionOpenSinceYear": np.where(ids % 3 == 0, np.nan, rng.integers(2005, 2015, n_stores)),
        "Promo2": promo2,
        "Promo2SinceWeek": np.where(promo2 == 1, rng.integers(1, 50, n_stores), np.nan),
        "Promo2SinceYear": np.where(promo2 == 1, rng.integers(2010, 2015, n_stores), np.nan),
        "PromoInterval": np.where(promo2 == 1, np.array(["Jan,Apr,Jul,Oct", "Feb,May,Aug,Nov", "Mar,Jun,Sept,Dec"])[ids % 3], ""),
    })


def _weather(dates: pd.DatetimeIndex, rng) -> pd.DataFrame:
    n = len(dates)
    season = -np.cos(2 * np.pi * (dates.dayofyear.to_numpy() - 15) / 365)
    mean_t = np.round(10 + 9 * season + rng.normal(0, 3, n))
    rain = rng.random(n) < 0.35
    frame = pd.DataFrame({c: np.zeros(n) for c in WEATHER_HEADER[1:]})
    frame["Date"] = dates.strftime("%Y-%m-%d")
    frame["Max_TemperatureC"], frame["Mean_TemperatureC"], frame["Min_TemperatureC"] = mean_t + 4, mean_t, mean_t - 4
    frame["Dew_PointC"], frame["MeanDew_PointC"], frame["Min_DewpointC"] = mean_t - 2, mean_t - 4, mean_t - 6
    humidity = np.clip(np.round(70 + 20 * rain + rng.normal(0, 8, n)), 20, 100)
    frame["Max_Humidity"], frame["Mean_Humidity"], frame["Min_Humidity"] = np.minimum(humidity + 10, 100), humidity, humidity - 20
    frame["Max_Sea_Level_PressurehPa"] = frame["Mean_Sea_Level_PressurehPa"] = frame["Min_Sea_Level_PressurehPa"] = 1015
    frame["Max_VisibilityKm"], frame["Mean_VisibilityKm"], frame["Min_VisibilitykM"] = 31, 12, 5
    wind = np.round(rng.gamma(3, 4, n))
    frame["Max_Wind_SpeedKm_h"], frame["Mean_Wind_SpeedKm_h"] = wind + 10, wind
    frame["Max_Gust_SpeedKm_h"] = np.where(rng.random(n) < 0.7, np.nan, wind + 25)
    frame["Precipitationmm"] = np.where(rain, np.round(rng.gamma(2, 2, n), 2), 0.0)
    frame["CloudCover"] = np.where(rng.random(n) < 0.05, np.nan, np.clip(np.round(4 + 3 * rain + rng.normal(0, 1, n)), 0, 8))
    frame["Events"] = np.where(rain, np.where(rng.random(n) < 0.2, "Rain-Thunderstorm", "Rain"),
                               np.where(rng.random(n) < 0.1, "Fog", None))
    frame["WindDirDegrees"] = rng.integers(0, 360, n)
    return frame[WEATHER_HEADER]


def _trends(dates: pd.DatetimeIndex, rng) -> pd.DataFrame:
    """fastai's googletrend.csv: weekly (Sunday to Saturday) search interest per state and for Germany."""
    first = dates[0] - pd.Timedelta(days=(dates[0].dayofweek + 1) % 7)
    weeks = pd.date_range(first, dates[-1], freq="7D")
    labels = [f"{w:%Y-%m-%d} - {w + pd.Timedelta(days=6):%Y-%m-%d}" for w in weeks]
    files = ["Rossmann_DE"] + [f"Rossmann_DE_{s.split(',')[-1]}" for s in STATES]
    return pd.DataFrame({"file": np.repeat(files, len(weeks)), "week": labels * len(files),
                         "trend": rng.integers(40, 100, len(files) * len(weeks))})


def write_sample(data_dir: Path, seed: int = 0, n_stores: int = 8, start: str = "2014-07-01",
                 train_end: str = "2015-07-31", test_days: int = 48) -> None:
    rng = np.random.default_rng(seed)
    data_dir = Path(data_dir)
    (data_dir / "weather").mkdir(parents=True, exist_ok=True)
    dates = pd.date_range(start, pd.Timestamp(train_end) + pd.Timedelta(days=test_days))
    stores = _stores(n_stores, rng)
    states = pd.DataFrame({"Store": stores["Store"], "State": [STATES[i % len(STATES)] for i in range(n_stores)]})
    weather = {}
    for state in sorted({s.split(",")[0] for s in STATES}):
        weather[state] = _weather(dates, rng)
        write_csv(data_dir / "weather" / f"{state}.csv", weather[state], sep=";", na_rep="NA")

    # One row per store and day, in Kaggle's order: newest date first, stores ascending.
    grid = pd.MultiIndex.from_product([dates[::-1], stores["Store"]], names=["Date", "Store"]).to_frame(index=False)
    d = grid["Date"]
    dow = d.dt.dayofweek.to_numpy() + 1  # Kaggle's DayOfWeek: 1 = Monday
    mmdd = d.dt.strftime("%m-%d")
    holiday = mmdd.map(HOLIDAYS).fillna("0").to_numpy()
    # Promo runs Monday to Friday every other week; school holidays in summer and around Christmas.
    week = d.dt.isocalendar().week.to_numpy().astype(int)
    promo = ((week % 2 == 0) & (dow <= 5)).astype(int)
    doy = d.dt.dayofyear.to_numpy()
    state_of = states.set_index("Store")["State"].str.split(",").str[0]
    shift = grid["Store"].map(state_of).map({"NW": 0, "BY": 14, "HE": 7, "HB": 21}).to_numpy()
    school = (((doy >= 180 + shift) & (doy < 222 + shift)) | (doy >= 356) | (doy <= 4) | (holiday != "0")).astype(int)
    refurbish = (grid["Store"].to_numpy() == 2) & (d >= "2015-02-02").to_numpy() & (d <= "2015-02-20").to_numpy()
    open_ = ((dow != 7) & (holiday == "0") & ~refurbish).astype(int)

    # Sales: store level x weekday x promo x days before/after holidays x rain, with noise.
    base = grid["Store"].map(dict(zip(stores["Store"], rng.uniform(3000, 12000, n_stores)))).to_numpy()
    weekday = np.array([0, 1.25, 1.0, 0.95, 0.95, 1.05, 0.8, 0.5])[dow]
    day_num = d.to_numpy().astype("datetime64[D]").astype(np.int64)
    holiday_days = np.unique(day_num[holiday != "0"])
    nxt = holiday_days[np.minimum(np.searchsorted(holiday_days, day_num), len(holiday_days) - 1)] - day_num
    before_holiday = np.where((nxt > 0) & (nxt <= 2), 1.3, 1.0)
    rainy = {s: w.set_index("Date")["Events"].fillna("").str.contains("Rain") for s, w in weather.items()}
    rain = np.zeros(len(grid), bool)
    for state, flags in rainy.items():
        mask = grid["Store"].map(state_of).to_numpy() == state
        rain[mask] = flags.reindex(d[mask].dt.strftime("%Y-%m-%d")).to_numpy()
    season = 1 + 0.15 * (d.dt.month.to_numpy() == 12)
    after_refurbish = np.where((grid["Store"].to_numpy() == 2) & (d > "2015-02-20").to_numpy()
                               & (d <= "2015-02-27").to_numpy(), 1.5, 1.0)
    sales = (base * weekday * (1 + 0.3 * promo) * before_holiday * (1 - 0.08 * rain) * season * after_refurbish
             * rng.lognormal(0, 0.05, len(grid)))
    sales = np.where(open_ == 1, np.round(sales), 0).astype(int)
    customers = np.where(open_ == 1, np.round(sales / rng.uniform(8, 10, len(grid))), 0).astype(int)
    frame = pd.DataFrame({"Store": grid["Store"], "DayOfWeek": dow, "Date": d.dt.strftime("%Y-%m-%d"),
                          "Sales": sales, "Customers": customers, "Open": open_, "Promo": promo,
                          "StateHoliday": holiday, "SchoolHoliday": school})
    is_test = (d > pd.Timestamp(train_end)).to_numpy()
    write_csv(data_dir / "train.csv", frame[~is_test])

    test = frame[is_test].drop(columns=["Sales", "Customers"]).reset_index(drop=True)
    test.insert(0, "Id", np.arange(1, len(test) + 1))
    test["Open"] = test["Open"].astype(float)
    test.loc[test.index[:3], "Open"] = np.nan  # Kaggle's test.csv has blank Open values too
    write_csv(data_dir / "test.csv", test)
    write_csv(data_dir / "sample_submission.csv", pd.DataFrame({"Id": test["Id"], "Sales": 0}))
    write_csv(data_dir / "store.csv", stores)
    write_csv(data_dir / "googletrend.csv", _trends(dates, rng))
    write_csv(data_dir / "store_states.csv", states)
