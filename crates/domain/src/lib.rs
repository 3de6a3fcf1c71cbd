//! The vocabulary of d1-registry: identifiers, personal information, consumer states and the
//! personal-data guard. Every type here is built only through a fallible `parse`, so a value
//! that exists is a value that passed the contract's rules. No I/O lives in this crate.

pub mod card;
pub mod clock;
pub mod consumer;
pub mod country;
pub mod field;
pub mod guard;
pub mod ids;
pub mod pi;

pub use consumer::{
    ConsumerState, DeleteReason, DeleteReasonCode, OperationKind, OperationStatus, PiSource,
};
pub use field::{FieldError, FieldErrorKind};
pub use guard::{IdShape, LookalikePolicy};
pub use ids::{ConsumerId, CorrelationId, IdError, IssuerId, Kid, UserId};
pub use pi::{Address, CardholderName, PersonalInformation, PersonalInformationInput, Phone};
