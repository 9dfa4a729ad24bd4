//! Wall-clock formatting shared by run ids, subtitles and SigV4 dates.
//!
//! Thin wrappers over `aws-smithy-types`' RFC 3339 formatter, so flamefire
//! carries no second date library.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

/// `2026-11-27T08:00:00Z`
pub fn iso_utc(epoch_s: u64) -> String {
    DateTime::from_secs(epoch_s as i64)
        .fmt(Format::DateTime)
        .unwrap_or_else(|_| epoch_s.to_string())
}

/// `20261127T080000Z`, the SigV4 `x-amz-date` form, also used in run ids.
pub fn compact_utc(epoch_s: u64) -> String {
    iso_utc(epoch_s).replace(['-', ':'], "")
}

pub fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_match_sigv4() {
        assert_eq!(super::iso_utc(1_795_766_400), "2026-11-27T08:00:00Z");
        assert_eq!(super::compact_utc(1_795_766_400), "20261127T080000Z");
    }
}
