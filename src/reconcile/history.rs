//! CM's command history and clock as OSSI replies give them: `list history` records read by
//! position (date, time, port, login, action, object, qualifier: the screen's columns, so a
//! release that renumbers field ids changes nothing), and `display time` read the same way
//! (year, month, day, hour, minute, second). A record's time has no year and no seconds and is
//! CM's local time: [`CmClock`] maps it to the module's clock.

use time::{Date, Month, PrimitiveDateTime, Time};

use crate::ossi::Reply;

/// One `list history` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryRecord {
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    /// Port, login, action, object, qualifier, as CM cut them (4, 12 and 31 characters).
    pub rest: [String; 5],
}

impl HistoryRecord {
    /// Reads one record's values; `None` when its date or time is not `mm/dd`, `hh:mm`.
    pub fn from_values(values: &[&str]) -> Option<HistoryRecord> {
        let (month, day) = pair(values.first()?, '/')?;
        let (hour, minute) = pair(values.get(1)?, ':')?;
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
            return None;
        }
        let rest = std::array::from_fn(|i| values.get(i + 2).unwrap_or(&"").trim().to_owned());
        Some(HistoryRecord {
            month,
            day,
            hour,
            minute,
            rest,
        })
    }

    pub fn login(&self) -> &str {
        &self.rest[1]
    }

    /// The record as a history-style line, the shape the classifier reads
    /// (`11/25 10:15 SAT dadmin chan station 1001`).
    pub fn line(&self) -> String {
        let mut line = format!(
            "{:02}/{:02} {:02}:{:02}",
            self.month, self.day, self.hour, self.minute
        );
        for value in self.rest.iter().filter(|v| !v.is_empty()) {
            line.push(' ');
            line.push_str(value);
        }
        line
    }
}

fn pair(text: &str, separator: char) -> Option<(u8, u8)> {
    let (a, b) = text.trim().split_once(separator)?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The records of a `list history` reply, newest first as CM lists them, and how many could
/// not be read.
pub fn read_history(reply: &Reply) -> (Vec<HistoryRecord>, usize) {
    let mut unreadable = 0;
    let records = reply
        .records
        .iter()
        .filter_map(|record| {
            let values: Vec<&str> = record.iter().map(|f| f.value.as_str()).collect();
            let read = HistoryRecord::from_values(&values);
            unreadable += usize::from(read.is_none());
            read
        })
        .collect();
    (records, unreadable)
}

/// CM's clock, read at a moment of the module's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmClock {
    /// CM's local time when it answered `display time`.
    pub cm_now: PrimitiveDateTime,
    /// The module's clock (ms since the epoch, UTC) at that moment.
    pub at_ms: u64,
}

impl CmClock {
    /// Reads a `display time` reply (year, month, day, hour, minute, second, by position).
    pub fn read(reply: &Reply, at_ms: u64) -> Option<CmClock> {
        let values: Vec<u16> = reply
            .records
            .first()?
            .iter()
            .take(6)
            .map(|f| f.value.trim().parse().ok())
            .collect::<Option<_>>()?;
        let [year, month, day, hour, minute, second] = values[..] else {
            return None;
        };
        let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
        let date =
            Date::from_calendar_date(i32::from(year), month, u8::try_from(day).ok()?).ok()?;
        let time = Time::from_hms(
            u8::try_from(hour).ok()?,
            u8::try_from(minute).ok()?,
            u8::try_from(second).ok()?,
        )
        .ok()?;
        Some(CmClock {
            cm_now: PrimitiveDateTime::new(date, time),
            at_ms,
        })
    }

    /// CM's local time minus UTC, in milliseconds (its time zone, and any drift).
    pub fn offset_ms(&self) -> i64 {
        let cm_as_utc = self.cm_now.assume_utc().unix_timestamp_nanos() / 1_000_000;
        cm_as_utc as i64 - self.at_ms as i64
    }

    /// When `record`'s minute began, on the module's clock. Its year is the latest that does
    /// not put it after CM's now; `None` for a date no such year has (February 29).
    pub fn minute_ms(&self, record: &HistoryRecord) -> Option<u64> {
        let time = Time::from_hms(record.hour, record.minute, 0).ok()?;
        let month = Month::try_from(record.month).ok()?;
        let year = self.cm_now.year();
        let at = |year| {
            Date::from_calendar_date(year, month, record.day)
                .ok()
                .map(|d| PrimitiveDateTime::new(d, time))
        };
        // Up to an hour after CM's now is this year's: the hour a DST change repeats.
        let latest = self.cm_now + time::Duration::HOUR;
        let local = match at(year) {
            Some(t) if t <= latest => t,
            _ => at(year - 1)?,
        };
        let ms =
            local.assume_utc().unix_timestamp_nanos() / 1_000_000 - i128::from(self.offset_ms());
        u64::try_from(ms).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ossi::{Field, Record};

    fn record(values: &[&str]) -> Record {
        values
            .iter()
            .map(|v| Field {
                id: None,
                value: v.to_string(),
            })
            .collect()
    }

    fn reply(records: &[&[&str]]) -> Reply {
        Reply {
            records: records.iter().map(|r| record(r)).collect(),
            complete: true,
            ..Reply::default()
        }
    }

    #[test]
    fn records_read_by_position_and_written_as_history_lines() {
        let (records, bad) = read_history(&reply(&[
            &[
                "12/05", "10:02", "S00107", "dadmin", "chan", "station", "1001",
            ],
            &[
                "12/05",
                "10:01",
                "SAT",
                "init",
                "add",
                "hunt-group",
                "12 extra words",
            ],
            &["13/05", "10:01", "x"],
            &["12/05", "1001"],
            &["12/05", "09:59", "S3", "tti-m", "chan", "station"],
        ]));
        assert_eq!(bad, 2);
        assert_eq!(records.len(), 3);
        assert_eq!(
            records[0].line(),
            "12/05 10:02 S00107 dadmin chan station 1001"
        );
        assert_eq!(records[1].login(), "init");
        assert_eq!(
            records[1].line(),
            "12/05 10:01 SAT init add hunt-group 12 extra words"
        );
        assert_eq!(records[2].line(), "12/05 09:59 S3 tti-m chan station");
    }

    fn clock(cm: &str, at_ms: u64) -> CmClock {
        let v: Vec<&str> = cm.split([' ', '-', ':']).collect();
        CmClock::read(&reply(&[&v]), at_ms).unwrap()
    }

    #[test]
    fn a_records_minute_on_the_modules_clock() {
        // 2026-12-06T09:15:30Z; CM one hour ahead (its local zone).
        let now = 1_796_548_530_000;
        let cm = clock("2026 12 06 10:15:30", now);
        assert_eq!(cm.offset_ms(), 3_600_000);
        let r = |date: &str, time: &str| {
            HistoryRecord::from_values(&[date, time, "S1", "dadmin", "chan", "station", "1"])
                .unwrap()
        };
        assert_eq!(cm.minute_ms(&r("12/06", "10:15")), Some(now - 30_000));
        // Later in the year than CM's now: last year's.
        let last_year = cm.minute_ms(&r("12/31", "23:59")).unwrap();
        assert_eq!(crate::clock::rfc3339(last_year), "2025-12-31T22:59:00.000Z");
        // No February 29 in 2026 or 2025.
        assert_eq!(cm.minute_ms(&r("02/29", "10:00")), None);
        assert!(CmClock::read(&reply(&[&["2026", "13", "1", "0", "0", "0"]]), now).is_none());
        assert!(CmClock::read(&reply(&[&["2026", "12"]]), now).is_none());
    }
}
