//! [`SendBudget`]: `[mail] rate_per_second` held across every sender of one state, replicas included: a
//! relay's limit is per account, not per process, so the budget lives in the state ([`State::take_send_budget`]).
//!
//! Time is cut into windows numbered from the Unix epoch (one second, or more for a rate under one per second),
//! so every sender on every machine agrees on which window it is in without talking to the others (their clocks
//! must agree to well under a second, as NTP keeps them). Each window allows `rate × length` messages in all; a
//! sender takes them from the state a few at a time and waits for the next window when the budget is spent.
//! What a sender took and did not use by the window's end is lost, so the rate is never exceeded, only at
//! times undershot.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::Mutex;

use crate::state::{State, StateError};

pub struct SendBudget<'a> {
    state: &'a dyn State,
    /// A window's length in milliseconds.
    window_ms: i64,
    /// Messages a window allows, across every sender.
    per_window: u32,
    /// Taken from the state at a time.
    chunk: u32,
    /// The window this sender holds part of the budget for, and how many of those it has left.
    held: Mutex<(i64, u32)>,
}

impl<'a> SendBudget<'a> {
    /// `None` or a rate that is not positive: no limit.
    pub fn new(state: &'a dyn State, rate_per_second: Option<f64>) -> Option<SendBudget<'a>> {
        let rate = rate_per_second.filter(|r| r.is_finite() && *r > 0.0)?;
        // Long enough for one whole message: 0.2/s is one message per 5-second window.
        let seconds = (1.0 / rate).ceil().max(1.0);
        let per_window = ((rate * seconds).floor() as u32).max(1);
        Some(SendBudget {
            state,
            window_ms: (seconds * 1000.0) as i64,
            per_window,
            // A tenth at a time: few round trips, and little left unused by a sender that stops early.
            chunk: (per_window / 10).max(1),
            held: Mutex::new((i64::MIN, 0)),
        })
    }

    /// Waits until one message may go.
    pub async fn acquire(&self) -> Result<(), StateError> {
        loop {
            let now_ms = Utc::now().timestamp_millis();
            let window = now_ms.div_euclid(self.window_ms);
            {
                let mut held = self.held.lock().await;
                if held.0 == window && held.1 > 0 {
                    held.1 -= 1;
                    return Ok(());
                }
                let granted = self
                    .state
                    .take_send_budget(window, self.chunk, self.per_window)
                    .await?;
                if granted > 0 {
                    *held = (window, granted - 1);
                    return Ok(());
                }
                *held = (window, 0);
            }
            let next_window_ms = (window + 1) * self.window_ms;
            let wait = (next_window_ms - Utc::now().timestamp_millis()).max(1);
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SqliteState;

    #[test]
    fn a_rate_under_one_per_second_gets_windows_long_enough_for_one_message() {
        let state = SqliteState::in_memory().unwrap();
        let slow = SendBudget::new(&state, Some(0.2)).unwrap();
        assert_eq!((slow.window_ms, slow.per_window), (5000, 1));
        let fast = SendBudget::new(&state, Some(250.0)).unwrap();
        assert_eq!(
            (fast.window_ms, fast.per_window, fast.chunk),
            (1000, 250, 25)
        );
        assert!(SendBudget::new(&state, Some(0.0)).is_none());
        assert!(SendBudget::new(&state, None).is_none());
    }
}
