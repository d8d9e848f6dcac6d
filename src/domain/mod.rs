//! The values the whole program shares about people and their mail: a subscriber's address, who they are and
//! where they stand, and the life of one delivery in the ledger.
//!
//! These are plain types with their rules (parsing, allowed status changes); nothing here reads a file, a
//! database or the clock. `state` stores them, `digest` decides with them, `mail` addresses messages with them:
//! none of those owns them, so a second storage backend touches none of the others.

mod delivery;
mod email;
mod subscriber;
mod subscriber_csv;

pub use delivery::{DeliveryEvent, DeliveryStatus, Transition};
pub use email::{EmailAddress, InvalidEmail};
pub use subscriber::{
    NewSubscriber, Subscriber, SubscriberHandle, SubscriberStatus, SuppressionKey,
};
pub use subscriber_csv::{ImportProblem, parse_subscribers_csv};
