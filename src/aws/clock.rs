//! The account's clock, not the laptop's (issue 17 §6).
//!
//! The SDK corrects its own signatures for a skewed laptop clock, so every
//! call succeeds from a laptop ten minutes fast; but the times flamefire
//! puts in a run (the hosts' `StartAt`, ListCommands' `InvokedAfter`, the
//! upload policy's expiration) are judged by clocks in AWS. This
//! interceptor reads the `Date` header of AWS's first response (as
//! aws-runtime's own clock-skew interceptor does) and keeps the offset;
//! [`Clock::now`] is this machine's time corrected by it.
//!
//! Input: HTTP responses of flamefire's clients. Output: a time. It never
//! fails a request.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::DateTime;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use aws_smithy_types::date_time::Format;

/// AWS's time minus this machine's, once a response has said it.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset: Arc<OnceLock<Offset>>,
}

/// A signed offset (`SystemTime` has no negative durations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    Ahead(Duration),
    Behind(Duration),
}

impl Clock {
    /// Now, by AWS's clock when a response has said it, else this machine's.
    pub fn now(&self) -> SystemTime {
        let now = SystemTime::now();
        match self.offset.get() {
            Some(Offset::Ahead(d)) => now + *d,
            Some(Offset::Behind(d)) => now - *d,
            None => now,
        }
    }

    /// The offset, once known.
    pub fn offset(&self) -> Option<Offset> {
        self.offset.get().copied()
    }

    /// The interceptor that sets the offset from the first `Date` header.
    pub fn interceptor(&self) -> DateHeader {
        DateHeader(self.clone())
    }
}

/// The offset of `server` from `local`, the moment the response was made.
pub fn offset(server: SystemTime, local: SystemTime) -> Offset {
    match server.duration_since(local) {
        Ok(ahead) => Offset::Ahead(ahead),
        Err(behind) => Offset::Behind(behind.duration()),
    }
}

/// When this attempt's request went out, by this machine's clock.
#[derive(Debug, Clone, Copy)]
struct SentAt(SystemTime);

impl Storable for SentAt {
    type Storer = StoreReplace<Self>;
}

#[derive(Debug)]
pub struct DateHeader(Clock);

impl Intercept for DateHeader {
    fn name(&self) -> &'static str {
        "flamefire::aws::clock::DateHeader"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.0.offset.get().is_none() {
            cfg.interceptor_state().store_put(SentAt(SystemTime::now()));
        }
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.0.offset.get().is_some() {
            return Ok(());
        }
        let received = SystemTime::now();
        let Some(server) = context
            .response()
            .headers()
            .get("date")
            .and_then(|d| DateTime::from_str(d, Format::HttpDate).ok())
            .and_then(|d| SystemTime::try_from(d).ok())
        else {
            return Ok(());
        };
        // The server wrote its Date between sending and receiving: take the
        // middle. `Date` has whole seconds, so the offset is good to about 1 s.
        let local = match cfg.load::<SentAt>() {
            Some(SentAt(sent)) => match received.duration_since(*sent) {
                Ok(trip) => *sent + trip / 2,
                Err(_) => received,
            },
            None => received,
        };
        let offset = offset(server, local);
        if self.0.offset.set(offset).is_ok() {
            tracing::debug!("AWS's clock is {offset:?} from this machine's");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_signed_and_correct_now() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let ten_min = Duration::from_secs(600);
        assert_eq!(offset(t + ten_min, t), Offset::Ahead(ten_min));
        assert_eq!(offset(t, t + ten_min), Offset::Behind(ten_min));

        let clock = Clock::default();
        clock.offset.set(Offset::Behind(ten_min)).unwrap();
        let behind = SystemTime::now() - ten_min;
        let now = clock.now();
        assert!(now >= behind && now < behind + Duration::from_secs(5));
    }
}
