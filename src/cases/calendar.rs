//! Working-time arithmetic for case deadlines (办理时限).
//!
//! Weekends, public holidays and the lunch break do not count, make-up working days (调休) do.
//! Asia/Shanghai is a fixed UTC+8 without DST, so local time is a plain offset and needs no tz
//! database. Instants are i64 milliseconds since the Unix epoch (UTC), as stored in the database.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate, Weekday};

const OFFSET_MS: i64 = 8 * 3_600_000;
const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;
/// About 20 years: a calendar with no working time must still give an answer, not spin forever.
const MAX_SPAN_DAYS: i64 = 20 * 366;
/// 1970-01-01 in chrono's day count from 0001-01-01 (= day 1).
const EPOCH_DAYS_FROM_CE: i64 = 719_163;

/// A configured exception to the Mon–Fri week, published yearly by the State Council.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum DayKind {
    /// A public holiday falling on a weekday.
    Holiday,
    /// A make-up working day (调休) falling on a weekend.
    Workday,
}

/// Working periods as (start, end) milliseconds after local midnight; a newtype so that the
/// derived `Calendar::default()` gets office hours rather than no hours at all.
#[derive(Clone, Debug)]
struct Periods(Vec<(i64, i64)>);

impl Periods {
    fn from_minutes(mut minutes: Vec<(u32, u32)>) -> Self {
        minutes.retain(|&(s, e)| s < e && e <= 24 * 60);
        minutes.sort_unstable();
        let mut kept: Vec<(i64, i64)> = Vec::with_capacity(minutes.len());
        for (s, e) in minutes {
            let (s, e) = (i64::from(s) * MINUTE_MS, i64::from(e) * MINUTE_MS);
            if kept.last().is_none_or(|&(_, prev_end)| s >= prev_end) {
                kept.push((s, e));
            }
        }
        Self(kept)
    }

    fn daily_ms(&self) -> i64 {
        self.0.iter().map(|&(s, e)| e - s).sum()
    }
}

impl Default for Periods {
    fn default() -> Self {
        Self::from_minutes(vec![(9 * 60, 12 * 60), (13 * 60 + 30, 17 * 60 + 30)])
    }
}

/// Which days and hours count towards a case's time limit.
#[derive(Clone, Debug, Default)]
pub struct Calendar {
    exceptions: HashMap<NaiveDate, DayKind>,
    periods: Periods,
}

impl Calendar {
    /// Default office hours plus the admin-configured exceptions; a later entry for the same date wins.
    pub fn new(exceptions: impl IntoIterator<Item = (NaiveDate, DayKind)>) -> Self {
        Self { exceptions: exceptions.into_iter().collect(), periods: Periods::default() }
    }

    /// Offices differ (summer hours, a 12:00–14:00 lunch), so the periods are configurable.
    /// Periods are minutes after local midnight; empty, out-of-range and overlapping ones are dropped.
    pub fn with_hours(self, periods: Vec<(u32, u32)>) -> Self {
        Self { periods: Periods::from_minutes(periods), ..self }
    }

    /// Whether the offices are open that day: Mon–Fri unless a holiday, weekends only as 调休.
    pub fn is_workday(&self, d: NaiveDate) -> bool {
        match self.exceptions.get(&d) {
            Some(DayKind::Holiday) => false,
            Some(DayKind::Workday) => true,
            None => !matches!(d.weekday(), Weekday::Sat | Weekday::Sun),
        }
    }

    /// Length of one working day, the unit in which limits like "3 个工作日" are converted.
    pub fn hours_per_day(&self) -> f64 {
        self.periods.daily_ms() as f64 / 3_600_000.0
    }

    /// The deadline after `minutes` of working time. Time before the next working period does not
    /// count, and a limit used up exactly at a period's end yields that end (17:30, not 09:00 next
    /// day). Gives up after about 20 years and returns that point, so a calendar without working time
    /// still terminates.
    pub fn add_working_minutes(&self, start_ms: i64, minutes: i64) -> i64 {
        if minutes <= 0 {
            return start_ms;
        }
        let mut remaining = minutes.saturating_mul(MINUTE_MS);
        let daily = self.periods.daily_ms();
        let (first_day, mut tod) = split(start_ms);
        let cap_day = first_day.saturating_add(MAX_SPAN_DAYS);
        for day in first_day..=cap_day {
            if self.works_on(day) {
                if tod == 0 && remaining > daily {
                    remaining -= daily;
                } else {
                    for &(s, e) in self.periods.0.iter().filter(|&&(_, e)| e > tod) {
                        let from = tod.max(s);
                        if remaining <= e - from {
                            return day_start_ms(day).saturating_add(from + remaining);
                        }
                        remaining -= e - from;
                    }
                }
            }
            tod = 0;
        }
        day_start_ms(cap_day.saturating_add(1)).max(start_ms)
    }

    /// Hour-based limits; rounded to whole minutes because that is the finest unit shown to staff.
    pub fn add_working_hours(&self, start_ms: i64, hours: f64) -> i64 {
        self.add_working_minutes(start_ms, (hours * 60.0).round() as i64)
    }

    /// Day-based limits measured in working hours, so half days and odd start times work naturally.
    pub fn add_working_days(&self, start_ms: i64, days: f64) -> i64 {
        self.add_working_hours(start_ms, days * self.hours_per_day())
    }

    /// Working minutes in `[a_ms, b_ms)`, rounded down; the inverse of `add_working_minutes`.
    pub fn working_minutes_between(&self, a_ms: i64, b_ms: i64) -> i64 {
        self.working_ms_between(a_ms, b_ms) / MINUTE_MS
    }

    /// The yellow-card instant: 80 % of the working time between `start_ms` and `due_ms`.
    pub fn yellow_at(&self, start_ms: i64, due_ms: i64) -> i64 {
        self.add_working_minutes(start_ms, (self.working_minutes_between(start_ms, due_ms) as f64 * 0.8) as i64)
    }

    /// A fresh clock: (due, yellow card) for a limit of `hours` working hours from `start_ms`.
    pub fn clock(&self, start_ms: i64, hours: f64) -> (i64, i64) {
        let due = self.add_working_hours(start_ms, hours);
        (due, self.yellow_at(start_ms, due))
    }

    /// How much of a case's limit is used up, driving the yellow (0.8) and red (1.0) cards.
    /// A zero-length limit counts as fully used once `due_ms` has arrived.
    pub fn fraction_elapsed(&self, start_ms: i64, due_ms: i64, now_ms: i64) -> f64 {
        let limit = self.working_ms_between(start_ms, due_ms);
        if limit == 0 {
            return if now_ms >= due_ms { 1.0 } else { 0.0 };
        }
        self.working_ms_between(start_ms, now_ms) as f64 / limit as f64
    }

    /// Millisecond precision so that fractions don't jump a whole minute at a time.
    fn working_ms_between(&self, a_ms: i64, b_ms: i64) -> i64 {
        if b_ms <= a_ms {
            return 0;
        }
        let (first_day, a_tod) = split(a_ms);
        let (mut last_day, mut b_tod) = split(b_ms);
        let cap_day = first_day.saturating_add(MAX_SPAN_DAYS);
        if last_day > cap_day {
            (last_day, b_tod) = (cap_day, DAY_MS);
        }
        (first_day..=last_day)
            .filter(|&day| self.works_on(day))
            .map(|day| {
                let lo = if day == first_day { a_tod } else { 0 };
                let hi = if day == last_day { b_tod } else { DAY_MS };
                self.periods.0.iter().map(|&(s, e)| (e.min(hi) - s.max(lo)).max(0)).sum::<i64>()
            })
            .sum()
    }

    fn works_on(&self, day: i64) -> bool {
        date_of_day(day).is_some_and(|d| self.is_workday(d))
    }
}

/// Local day index (days since 1970-01-01 in UTC+8) and milliseconds into that day.
fn split(ms: i64) -> (i64, i64) {
    let local = ms.saturating_add(OFFSET_MS);
    (local.div_euclid(DAY_MS), local.rem_euclid(DAY_MS))
}

fn day_start_ms(day: i64) -> i64 {
    day.saturating_mul(DAY_MS).saturating_sub(OFFSET_MS)
}

fn date_of_day(day: i64) -> Option<NaiveDate> {
    let ce = i32::try_from(day.checked_add(EPOCH_DAYS_FROM_CE)?).ok()?;
    NaiveDate::from_num_days_from_ce_opt(ce)
}

/// The China-local calendar date of an instant; clamps to chrono's range instead of panicking.
pub fn local_date(ms: i64) -> NaiveDate {
    date_of_day(split(ms).0).unwrap_or(if ms < 0 { NaiveDate::MIN } else { NaiveDate::MAX })
}

/// The instant of a China-local wall-clock time; minutes past 1440 roll into the next day.
pub fn local_ms(d: NaiveDate, minute_of_day: u32) -> i64 {
    let day = i64::from(d.num_days_from_ce()) - EPOCH_DAYS_FROM_CE;
    day_start_ms(day).saturating_add(i64::from(minute_of_day) * MINUTE_MS)
}

/// Parses the admin-edited exception list, e.g. `2026-10-01 休 国庆节` or `2026-09-27 班 国庆调休`.
/// Errors are shown to the admin as-is, so they are zh-CN and name the offending line.
pub fn parse_exceptions(text: &str) -> Result<Vec<(NaiveDate, DayKind, String)>, String> {
    let mut out = Vec::new();
    let mut seen: HashMap<NaiveDate, usize> = HashMap::new();
    for (idx, raw) in text.lines().enumerate() {
        let n = idx + 1;
        let line = raw.trim_start_matches('\u{feff}').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (date_tok, rest) = split_token(line);
        let date = NaiveDate::parse_from_str(date_tok, "%Y-%m-%d")
            .ok()
            .filter(|d| d.format("%Y-%m-%d").to_string() == date_tok)
            .ok_or_else(|| format!("第 {n} 行：日期格式应为 YYYY-MM-DD"))?;
        let (kind_tok, name) = split_token(rest);
        let kind = match kind_tok.to_lowercase().as_str() {
            "休" | "假" | "holiday" => DayKind::Holiday,
            "班" | "work" | "workday" => DayKind::Workday,
            _ => return Err(format!("第 {n} 行：类型应为“休”或“班”")),
        };
        if let Some(prev) = seen.insert(date, n) {
            return Err(format!("第 {n} 行：日期 {date_tok} 与第 {prev} 行重复"));
        }
        out.push((date, kind, name.to_string()));
    }
    Ok(out)
}

fn split_token(s: &str) -> (&str, &str) {
    s.split_once(char::is_whitespace).map_or((s, ""), |(tok, rest)| (tok, rest.trim_start()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
        local_ms(date(y, m, d), h * 60 + min)
    }

    fn national_day_2026() -> Calendar {
        let holidays = (1..=7).map(|d| (date(2026, 10, d), DayKind::Holiday));
        Calendar::new(holidays.chain([(date(2026, 9, 27), DayKind::Workday), (date(2026, 10, 10), DayKind::Workday)]))
    }

    /// splitmix64, so the property test is reproducible without the rand crate.
    fn splitmix64(state: &mut u64, below: u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let z = (*state ^ (*state >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % below
    }

    #[test]
    fn local_time_is_utc_plus_8() {
        // 2026-01-01T00:00+08:00 = 2025-12-31T16:00Z = 1_767_196_800 s.
        assert_eq!(at(2026, 1, 1, 0, 0), 1_767_196_800_000);
        assert_eq!(local_date(1_767_196_800_000), date(2026, 1, 1));
        assert_eq!(local_date(1_767_196_800_000 - 1), date(2025, 12, 31));
        assert_eq!(local_date(-OFFSET_MS - 1), date(1969, 12, 31));
        assert_eq!((local_date(i64::MIN), local_date(i64::MAX)), (NaiveDate::MIN, NaiveDate::MAX));
    }

    #[test]
    fn national_day_holidays_and_make_up_days() {
        let cal = national_day_2026();
        assert!(cal.is_workday(date(2026, 9, 25)) && !cal.is_workday(date(2026, 9, 26)));
        assert!(cal.is_workday(date(2026, 9, 27)) && cal.is_workday(date(2026, 10, 10)));
        assert!(!cal.is_workday(date(2026, 10, 1)) && cal.is_workday(date(2026, 10, 8)));
        assert_eq!(cal.hours_per_day(), 7.0);
        assert_eq!(cal.add_working_hours(at(2026, 9, 25, 17, 0), 2.0), at(2026, 9, 27, 10, 30));
        assert_eq!(cal.add_working_hours(at(2026, 9, 30, 17, 0), 1.0), at(2026, 10, 8, 9, 30));
        assert_eq!(cal.working_minutes_between(at(2026, 9, 30, 17, 0), at(2026, 10, 8, 9, 30)), 60);
    }

    #[test]
    fn adding_time_skips_evenings_lunch_and_weekends() {
        let cal = Calendar::default();
        assert_eq!(date(2026, 3, 6).weekday(), Weekday::Fri);
        // Friday 16:30 + 2 h: 1 h until 17:30, then 09:00 + 1 h on Monday.
        assert_eq!(cal.add_working_hours(at(2026, 3, 6, 16, 30), 2.0), at(2026, 3, 9, 10, 0));
        assert_eq!(cal.add_working_hours(at(2026, 3, 6, 17, 0), 2.0), at(2026, 3, 9, 10, 30));
        assert_eq!(cal.add_working_hours(at(2026, 3, 6, 16, 30), 1.0), at(2026, 3, 6, 17, 30));
        assert_eq!(cal.add_working_hours(at(2026, 3, 5, 12, 30), 1.0), at(2026, 3, 5, 14, 30));
        assert_eq!(cal.add_working_hours(at(2026, 3, 7, 10, 0), 1.0), at(2026, 3, 9, 10, 0));
        assert_eq!(cal.add_working_minutes(at(2026, 3, 5, 9, 0) + 30_000, 1), at(2026, 3, 5, 9, 1) + 30_000);
        let sat = at(2026, 3, 7, 10, 0);
        assert_eq!((cal.add_working_minutes(sat, 0), cal.add_working_minutes(sat, -5)), (sat, sat));
        // 30 working days from a Monday morning end on the sixth Friday at closing time.
        assert_eq!(cal.add_working_minutes(at(2026, 3, 2, 9, 0), 12_600), at(2026, 4, 10, 17, 30));
        // Thursday 10:00 + 3 days = 21 h: Thu 6 h, Fri 7 h, Mon 7 h, Tue 1 h.
        assert_eq!(cal.add_working_days(at(2026, 3, 5, 10, 0), 3.0), at(2026, 3, 10, 10, 0));
        assert_eq!(cal.add_working_days(at(2026, 3, 5, 10, 0), 0.5), at(2026, 3, 5, 15, 0));
    }

    #[test]
    fn minutes_between_inverts_adding_minutes() {
        let cal = national_day_2026().with_hours(vec![(8 * 60 + 30, 12 * 60), (14 * 60, 18 * 60)]);
        let (year_start, year_end) = (at(2026, 1, 1, 0, 0), at(2027, 1, 1, 0, 0));
        let mut rng = 2026;
        for _ in 0..2_000 {
            // Random instants (not minute-aligned) across a year with exceptions, limits up to ~95 days.
            let start = year_start + splitmix64(&mut rng, (year_end - year_start) as u64) as i64;
            let minutes = 1 + splitmix64(&mut rng, 20_000) as i64;
            let due = cal.add_working_minutes(start, minutes);
            assert!(due > start);
            assert_eq!(cal.working_minutes_between(start, due), minutes, "start {start}, minutes {minutes}");
            let end = start + splitmix64(&mut rng, 60 * DAY_MS as u64) as i64;
            assert!(cal.add_working_minutes(start, cal.working_minutes_between(start, end)) <= end);
        }
        assert_eq!(cal.working_minutes_between(year_end, year_start), 0);
    }

    #[test]
    fn fraction_elapsed_across_a_weekend() {
        let cal = Calendar::default();
        // Friday 15:30 + 10 h: Fri 2 h, Mon 7 h, Tue 1 h.
        let start = at(2026, 3, 6, 15, 30);
        let due = cal.add_working_hours(start, 10.0);
        assert_eq!(due, at(2026, 3, 10, 10, 0));
        assert_eq!(cal.fraction_elapsed(start, due, start), 0.0);
        assert_eq!(cal.fraction_elapsed(start, due, start - DAY_MS), 0.0);
        assert!((cal.fraction_elapsed(start, due, at(2026, 3, 7, 12, 0)) - 0.2).abs() < 1e-9);
        assert!((cal.fraction_elapsed(start, due, at(2026, 3, 9, 16, 30)) - 0.8).abs() < 1e-9);
        assert_eq!(cal.fraction_elapsed(start, due, due), 1.0);
        assert!((cal.fraction_elapsed(start, due, at(2026, 3, 10, 12, 0)) - 1.2).abs() < 1e-9);
        // A limit with no working time in it is all-or-nothing.
        let (sat, sun) = (at(2026, 3, 7, 9, 0), at(2026, 3, 8, 9, 0));
        assert_eq!((cal.fraction_elapsed(sat, sun, sat), cal.fraction_elapsed(sat, sun, sun)), (0.0, 1.0));
    }

    #[test]
    fn odd_periods_and_extreme_inputs_terminate() {
        let periods = vec![(600, 540), (14 * 60, 18 * 60), (8 * 60, 12 * 60), (11 * 60, 14 * 60), (0, 2000)];
        let cal = Calendar::default().with_hours(periods);
        assert_eq!(cal.hours_per_day(), 8.0);
        assert_eq!(cal.add_working_hours(at(2026, 3, 5, 11, 0), 2.0), at(2026, 3, 5, 15, 0));
        let none = Calendar::default().with_hours(vec![]);
        let start = at(2026, 3, 5, 9, 0);
        let due = none.add_working_minutes(start, 60);
        assert!(due > start + 19 * 365 * DAY_MS && due < start + 21 * 366 * DAY_MS);
        assert_eq!(none.working_minutes_between(start, due), 0);
        assert_eq!(none.add_working_days(start, 1.0), start);
        assert_eq!(none.fraction_elapsed(start, due, start), 0.0);
        let def = Calendar::default();
        assert!(def.add_working_minutes(i64::MAX - 1, i64::MAX) >= i64::MAX - 1);
        assert!(def.working_minutes_between(i64::MIN, i64::MAX) >= 0);
        assert_eq!(def.add_working_hours(start, f64::NAN), start);
    }

    #[test]
    fn parse_exceptions_accepts_the_admin_format() {
        let text = "\u{feff}# 2026 国庆\n\n2026-10-01 休 国庆节\n  2026-09-27\t班  国庆 调休 \n2026-10-02 假\n2026-10-10 Workday";
        let parsed = parse_exceptions(text).unwrap();
        assert_eq!(parsed[0], (date(2026, 10, 1), DayKind::Holiday, "国庆节".to_string()));
        assert_eq!(parsed[1], (date(2026, 9, 27), DayKind::Workday, "国庆 调休".to_string()));
        assert_eq!(parsed[2], (date(2026, 10, 2), DayKind::Holiday, String::new()));
        assert_eq!(parsed[3], (date(2026, 10, 10), DayKind::Workday, String::new()));
        assert_eq!((parsed.len(), parse_exceptions("").unwrap().len()), (4, 0));
    }

    #[test]
    fn parse_exceptions_reports_the_line() {
        let err = |text: &str| parse_exceptions(text).unwrap_err();
        assert_eq!(err("2026-10-01 休\n\n2026/10/02 休"), "第 3 行：日期格式应为 YYYY-MM-DD");
        assert_eq!(err("2026-9-27 班"), "第 1 行：日期格式应为 YYYY-MM-DD");
        assert_eq!(err("2026-02-30 休"), "第 1 行：日期格式应为 YYYY-MM-DD");
        assert_eq!(err("# x\n2026-10-01 休\n\n2026-10-02 上班"), "第 4 行：类型应为“休”或“班”");
        assert_eq!(err("2026-10-01"), "第 1 行：类型应为“休”或“班”");
        assert_eq!(err("2026-10-01 休\n2026-10-01 班"), "第 2 行：日期 2026-10-01 与第 1 行重复");
    }
}
