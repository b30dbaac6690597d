"""Rossmann files and features: checked reading, the store/state/weather joins, competition and
Promo2 durations, the promo/holiday event distances, as the third-place solution used them, and each
store's recent sales level as known at forecast time."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.data.dates import add_date_parts, event_features, parse_dates, run_lengths
from harness.data.files import check_no_duplicates, check_values, read_table
from harness.data.lags import lagged_group_mean
from harness.data.tabular import join_checked
from harness.errors import HarnessError

TRAIN_COLUMNS = ("Store", "DayOfWeek", "Date", "Sales", "Customers", "Open", "Promo", "StateHoliday", "SchoolHoliday")
TEST_COLUMNS = ("Id", "Store", "DayOfWeek", "Date", "Open", "Promo", "StateHoliday", "SchoolHoliday")
STORE_COLUMNS = ("Store", "StoreType", "Assortment", "CompetitionDistance", "CompetitionOpenSinceMonth",
                 "CompetitionOpenSinceYear", "Promo2", "Promo2SinceWeek", "Promo2SinceYear", "PromoInterval")
WEATHER_COLUMNS = ("Max_TemperatureC", "Mean_TemperatureC", "Min_TemperatureC", "Max_Humidity", "Mean_Humidity",
                   "Min_Humidity", "Max_Wind_SpeedKm_h", "Mean_Wind_SpeedKm_h", "CloudCover", "Events")
EVENTS = ("Promo", "StateHoliday", "SchoolHoliday", "Closed", "LongClosure")  # what data.events may name
# A closure this long is no Sunday or holiday: a refurbishment, with its clearance sales before and reopening after.
LONG_CLOSURE_DAYS = 3
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sept", "Oct", "Nov", "Dec")


@dataclass
class RossmannData:
    train: pd.DataFrame
    test: pd.DataFrame | None
    store: pd.DataFrame
    sample: pd.DataFrame | None
    weather: pd.DataFrame | None  # State, Date and the weather columns, None without store_states/weather
    trends: pd.DataFrame | None  # State, WeekStart, trend, trend_DE; None without googletrend.csv
    data_dir: Path
    cache: dict = field(default_factory=dict)


# ---------------------------------------------------------------------- reading
def train_path(data_dir: Path) -> Path:
    for name in ("train.csv", "train.csv.gz"):
        if (data_dir / name).exists():
            return data_dir / name
    raise HarnessError(f"{data_dir} has no train.csv (or train.csv.gz); run `harness data rossmann --sample` "
                       "or `harness data rossmann --from DIR` with the Kaggle files")


def read_train(path: Path) -> pd.DataFrame:
    frame = read_table(path, required=TRAIN_COLUMNS, dtype={"StateHoliday": str},
                       integer=("Store", "DayOfWeek", "Open", "Promo", "SchoolHoliday"), numeric=("Sales", "Customers"))
    check_values(frame, "Sales", path, lo=0, hint="sales are amounts of money, 0 or more")
    check_values(frame, "Customers", path, lo=0, hint="customers are counts, 0 or more")
    check_flags(frame, path)
    frame["Date"] = parse_dates(frame, "Date", path)
    check_no_duplicates(frame, ["Store", "Date"], path)
    return frame


def check_flags(frame: pd.DataFrame, path: Path, blank_open: bool = False) -> None:
    """DayOfWeek 1..7 (Monday is 1) and the 0/1 columns; a blank Open only where ``blank_open``."""
    check_values(frame, "DayOfWeek", path, lo=1, hi=7, hint="Monday is 1, Sunday 7")
    for column in ("Open", "Promo", "SchoolHoliday"):
        check_values(frame, column, path, allowed=(0, 1), blank_ok=blank_open and column == "Open",
                     hint="1 for yes, 0 for no" + (" (a blank Open counts as open)" if blank_open else ""))


def read_test(path: Path) -> pd.DataFrame:
    frame = read_table(path, required=TEST_COLUMNS, dtype={"StateHoliday": str},
                       integer=("Id", "Store", "DayOfWeek", "Promo", "SchoolHoliday"), optional_numeric=("Open",))
    check_flags(frame, path, blank_open=True)
    # Kaggle's test.csv has blank Open values (store 622); the competition treats them as open.
    frame["Open"] = frame["Open"].fillna(1).astype("int64")
    frame["Date"] = parse_dates(frame, "Date", path)
    check_no_duplicates(frame, ["Id"], path)
    check_no_duplicates(frame, ["Store", "Date"], path)
    return frame


def read_store(path: Path) -> pd.DataFrame:
    frame = read_table(path, required=STORE_COLUMNS, integer=("Store", "Promo2"),
                       optional_numeric=("CompetitionDistance", "CompetitionOpenSinceMonth", "CompetitionOpenSinceYear",
                                         "Promo2SinceWeek", "Promo2SinceYear"))
    check_values(frame, "CompetitionDistance", path, lo=0, blank_ok=True,
                 hint="the distance to the nearest competitor in metres; leave it blank when unknown")
    check_values(frame, "Promo2", path, allowed=(0, 1), hint="1 if the store takes part in Promo2, else 0")
    check_no_duplicates(frame, ["Store"], path)
    return frame


def weather_file(folder: Path, state: str) -> Path:
    """A state's weather file; a combined code such as ``HB,NI`` uses its first state with a file."""
    candidates = [state, state.replace(",", ""), *state.split(",")]
    for name in candidates:
        if (folder / f"{name}.csv").exists():
            return folder / f"{name}.csv"
    raise HarnessError(f"{folder / (state + '.csv')} is missing: store_states.csv names state {state!r}; "
                       f"add its weather file or remove the weather folder")


def read_weather(data_dir: Path, states: pd.DataFrame) -> pd.DataFrame:
    folder = data_dir / "weather"
    frames = []
    for state in sorted(states["State"].unique()):
        path = weather_file(folder, state)
        frame = read_table(path, sep=";", required=("Date", *WEATHER_COLUMNS),
                           optional_numeric=[c for c in WEATHER_COLUMNS if c != "Events"])
        frame["Date"] = parse_dates(frame, "Date", path)
        check_no_duplicates(frame, ["Date"], path)
        frame = frame[["Date", *WEATHER_COLUMNS]].copy()
        frame.insert(0, "State", state)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def read_trends(path: Path, states: pd.DataFrame) -> pd.DataFrame:
    """fastai's googletrend.csv (file ``Rossmann_DE_<STATE>`` or ``Rossmann_DE``, week
    ``2012-12-02 - 2012-12-08``, trend): one row per store state and week, with Germany's trend."""
    frame = read_table(path, required=("file", "week", "trend"), numeric=("trend",))
    frame["WeekStart"] = parse_dates(frame.assign(week=frame["week"].astype(str).str.split(" - ").str[0]), "week", path)
    frame["code"] = frame["file"].astype(str).str.split("_").str[2]
    germany = frame[frame["code"].isna()][["WeekStart", "trend"]].rename(columns={"trend": "trend_DE"})
    if germany.empty:
        raise HarnessError(f"{path}: no Rossmann_DE rows (Germany's trend); add them")
    per_state = []
    for state in sorted(states["State"].unique()):
        # A combined code such as HB,NI uses the first of its states with trend rows, as for weather.
        code = next((c for c in [state, *state.split(",")] if (frame["code"] == c).any()), None)
        if code is None:
            raise HarnessError(f"{path}: no rows for state {state!r} (file Rossmann_DE_{state.split(',')[0]}); add them")
        rows = frame[frame["code"] == code][["WeekStart", "trend"]]
        per_state.append(rows.assign(State=state))
    trends = pd.concat(per_state, ignore_index=True)
    check_no_duplicates(trends, ["State", "WeekStart"], path)
    check_no_duplicates(germany, ["WeekStart"], path)
    return join_checked(trends, germany, "WeekStart", f"{path.name} (Rossmann_DE rows)", "state weeks")


def load(data_dir: Path) -> RossmannData:
    data_dir = Path(data_dir)
    train = read_train(train_path(data_dir))
    store = read_store(data_dir / "store.csv")
    test = read_test(data_dir / "test.csv") if (data_dir / "test.csv").exists() else None
    sample = None
    if (data_dir / "sample_submission.csv").exists():
        path = data_dir / "sample_submission.csv"
        sample = read_table(path, required=("Id", "Sales"), integer=("Id",))
        if test is not None and set(sample["Id"]) != set(test["Id"]):
            raise HarnessError(f"{path}: its Id set differs from test.csv's ({len(sample)} vs {len(test)} ids)")
    for name, frame in (("train.csv", train), ("test.csv", test)):
        if frame is None:
            continue
        unknown = ~frame["Store"].isin(store["Store"])
        if unknown.any():
            raise HarnessError(f"{data_dir / name}: {int(unknown.sum())} row(s) of store(s) absent from store.csv, "
                               f"first store {int(frame.loc[unknown, 'Store'].iloc[0])}; add them to store.csv")
    weather = trends = None
    states_path = data_dir / "store_states.csv"
    if states_path.exists():
        states = read_table(states_path, required=("Store", "State"), integer=("Store",))
        check_no_duplicates(states, ["Store"], states_path)
        store = join_checked(store, states[["Store", "State"]], "Store", states_path.name, "stores of store.csv")
        if (data_dir / "weather").is_dir():
            weather = read_weather(data_dir, states)
        if (data_dir / "googletrend.csv").exists():
            trends = read_trends(data_dir / "googletrend.csv", states)
    return RossmannData(train, test, store, sample, weather, trends, data_dir)


# ---------------------------------------------------------------------- features
def store_features(store: pd.DataFrame) -> pd.DataFrame:
    """Per store: the dates competition opened and Promo2 started (computed on 1,115 rows, not 1M)."""
    store = store.copy()
    year = store["CompetitionOpenSinceYear"].fillna(1900).clip(1900, 2100).astype(int)
    month = store["CompetitionOpenSinceMonth"].fillna(1).clip(1, 12).astype(int)
    store["CompetitionOpenSince"] = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": 15}))
    p_year = store["Promo2SinceYear"].fillna(1900).clip(1900, 2100).astype(int)
    p_week = store["Promo2SinceWeek"].fillna(1).clip(1, 53).astype(int)
    # Monday of ISO week p_week of p_year: Jan 4th is always in ISO week 1.
    jan4 = pd.to_datetime(pd.DataFrame({"year": p_year, "month": 1, "day": 4}))
    store["Promo2Since"] = jan4 - pd.to_timedelta(jan4.dt.dayofweek, unit="D") + pd.to_timedelta((p_week - 1) * 7, unit="D")
    store["PromoInterval"] = store["PromoInterval"].fillna("")
    return store


# Days a row's forward event features look ahead (data.event_horizon > 0), itself a continuous input.
HORIZON_COLUMN = "EventHorizon"


def event_horizons(frame: pd.DataFrame, days: int) -> np.ndarray:
    """How many days after its own each row may look at, so that every row sees ahead as a test row does.

    The test's last day sees no later day, its first ``days - 1`` days. A test row sees to test.csv's last
    day; train.csv is cut into blocks of ``days`` days ending at its last day (the last block is the
    default validation window, the ones before it the time folds), and a row sees to its block's end."""
    dates = frame["Date"].to_numpy().astype("datetime64[D]")
    is_train = (frame["Id"] == -1).to_numpy()
    horizon = np.zeros(len(frame), dtype=np.int64)
    last_train = dates[is_train].max()
    horizon[is_train] = (last_train - dates[is_train]).astype(np.int64) % days
    if (~is_train).any():
        horizon[~is_train] = (dates[~is_train].max() - dates[~is_train]).astype(np.int64)
    return horizon


# Columns a store's recent level can also be split by (few values each, known ahead for test rows).
RECENT_BY = ("DayOfWeek", "Promo", "SchoolHoliday", "StateHoliday")


def recent_sales_windows(recent_days, recent_by=()) -> dict[str, tuple[int, list[str]]]:
    """Each recent-level column's name and its (days, grouping): RecentLogSales<d> per store, then
    RecentLogSales<d>By<column> per store and value of the column."""
    windows = {f"RecentLogSales{days}": (days, ["Store"]) for days in recent_days}
    windows.update({f"RecentLogSales{days}By{by}": (days, ["Store", by]) for days in recent_days for by in recent_by})
    return windows


def add_features(rows: pd.DataFrame, data: RossmannData, events, window: int, max_days: int,
                 recent_days=(), recent_lag: int = 48, recent_by=(), horizon_days: int = 0) -> pd.DataFrame:
    """Every feature for train and test rows together (events need both sides of the boundary).

    ``recent_days``: for each length d, the store's mean log sales over the d days ending ``recent_lag``
    days before the row (open days of train.csv only), so a forecast up to ``recent_lag`` days ahead, as
    Kaggle's 48-day test, reads nothing it could not know: a store's recent level, beside its embedding's
    level over all years. ``recent_by``: the same mean over only the days that share the row's value of
    each column (its weekday: the store's recent Mondays; its promo state). ``horizon_days`` > 0: the
    forward event features see only as far ahead as a test row would (``event_horizons``)."""
    df = add_date_parts(rows.copy(), "Date", prefix="")
    df = join_checked(df, store_features(data.store), "Store", "store.csv", "rows")
    if data.weather is not None:
        df = join_checked(df, data.weather, ["State", "Date"], "weather/<STATE>.csv", "rows")
    if data.trends is not None:
        # Google's weeks run Sunday to Saturday: key each day by the Sunday that starts its week.
        week_start = df["Date"] - pd.to_timedelta((df["Date"].dt.dayofweek + 1) % 7, unit="D")
        keyed = df[["State"]].assign(WeekStart=week_start)
        df[["trend", "trend_DE"]] = join_checked(keyed, data.trends, ["State", "WeekStart"], "googletrend.csv",
                                                 "rows")[["trend", "trend_DE"]].to_numpy()
    days = (df["Date"] - df["CompetitionOpenSince"]).dt.days
    days = days.where(df["CompetitionOpenSinceYear"].fillna(0) >= 1990, 0).clip(lower=0)
    df["CompetitionDaysOpen"] = days
    df["CompetitionMonthsOpen"] = (days // 30).clip(upper=24)
    p_days = (df["Date"] - df["Promo2Since"]).dt.days.where(df["Promo2"] == 1, 0).clip(lower=0)
    df["Promo2Days"] = p_days
    df["Promo2Weeks"] = (p_days // 7).clip(upper=25)
    codes, intervals = pd.factorize(df["PromoInterval"])
    table = np.array([[m in str(i).split(",") for m in MONTH_NAMES] for i in intervals], dtype=bool)
    df["IsPromo2Month"] = table[codes, df["Month"].to_numpy() - 1] & (p_days > 0).to_numpy()
    df["StateHoliday"] = df["StateHoliday"].fillna("0").astype(str)
    df["StateHolidayFlag"] = df["StateHoliday"] != "0"
    df["Closed"] = df["Open"] == 0
    df["LongClosure"] = run_lengths(df, "Store", "Date", "Closed") >= LONG_CLOSURE_DAYS
    flags = {"StateHoliday": "StateHolidayFlag"}
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise HarnessError(f"data.events: unknown event(s) {', '.join(unknown)}; choose from {', '.join(EVENTS)}")
    source = df[[flags.get(e, e) for e in events]].copy()
    source.columns = list(events)
    source[["Store", "Date"]] = df[["Store", "Date"]]
    horizon = event_horizons(df, horizon_days) if horizon_days else None
    df = pd.concat([df, event_features(source, "Store", "Date", events, window=window, max_days=max_days,
                                       horizon=horizon)], axis=1)
    if horizon is not None:
        df[HORIZON_COLUMN] = horizon
    if recent_days:
        known = (df["Id"] == -1) & (df["Sales"] > 0)
        log_sales = df[["Store", "Date", *recent_by]].assign(log_sales=np.log(df["Sales"].where(known)))
        for name, (days, group) in recent_sales_windows(recent_days, recent_by).items():
            df[name] = lagged_group_mean(log_sales, group, "Date", "log_sales", days, recent_lag)
    return df
