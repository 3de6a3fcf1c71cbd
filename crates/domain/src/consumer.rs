//! Consumer lifecycle words: states, PI sources, delete reasons and the operations trail.

use std::sync::LazyLock;

use regex::Regex;

use crate::field::FieldError;

static REASON: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9 ]{1,64}$").expect("static pattern"));

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// The value as written on the wire and in the database.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire),+
                }
            }

            /// Parses the wire form.
            #[must_use]
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($wire => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

wire_enum!(
    /// The state of a consumer.
    ConsumerState {
        /// Registered and usable.
        Active = "ACTIVE",
        /// Logically deleted; its data key is destroyed.
        Deleted = "DELETED",
    }
);

wire_enum!(
    /// Where a consumer's PI lives.
    PiSource {
        /// In this registry, encrypted.
        Stored = "STORED",
        /// At the issuer backend, fetched when a service needs it.
        Issuer = "ISSUER",
    }
);

wire_enum!(
    /// Who decided a deletion.
    DeleteReasonCode {
        /// The end user asked for it.
        UserDecision = "USER_DECISION",
        /// The issuer decided it (the default).
        IssuerDecision = "ISSUER_DECISION",
    }
);

wire_enum!(
    /// The kinds of entry in the operations trail.
    OperationKind {
        /// Register consumer, explicit or implicit.
        Register = "REGISTER",
        /// Update consumer.
        Update = "UPDATE",
        /// Delete consumer.
        Delete = "DELETE",
        /// Register card.
        CardRegister = "CARD_REGISTER",
        /// Create card.
        CardCreate = "CARD_CREATE",
        /// A card deleted, alone or by a consumer's delete.
        CardDelete = "CARD_DELETE",
        /// A card suspended.
        CardSuspend = "CARD_SUSPEND",
        /// A suspended card resumed.
        CardResume = "CARD_RESUME",
        /// A card given a new expiry.
        CardRenew = "CARD_RENEW",
        /// A card replaced by a new one (the entry names the old card).
        CardReplace = "CARD_REPLACE",
        /// An INACTIVE card, or a renewal, made current.
        CardActivate = "CARD_ACTIVATE",
        /// Click to Pay enrolment.
        ClickToPayEnrolment = "CLICK_TO_PAY_ENROLMENT",
        /// A fetch of PI from the issuer backend.
        PiFetch = "PI_FETCH",
    }
);

impl OperationKind {
    /// The operation's name in a card operation notification (contract section 9a), for the
    /// kinds that are card operations.
    #[must_use]
    pub fn notified_as(self) -> Option<&'static str> {
        Some(match self {
            Self::CardRegister => "REGISTER",
            Self::CardCreate => "CREATE",
            Self::CardActivate => "ACTIVATE",
            Self::CardSuspend => "SUSPEND",
            Self::CardResume => "RESUME",
            Self::CardDelete => "DELETE",
            Self::CardRenew => "RENEW",
            Self::CardReplace => "REPLACE",
            Self::ClickToPayEnrolment => "CLICK_TO_PAY_ENROLMENT",
            Self::Register | Self::Update | Self::Delete | Self::PiFetch => return None,
        })
    }
}

wire_enum!(
    /// Where an operation stands.
    OperationStatus {
        /// Accepted, not finished.
        Pending = "PENDING",
        /// Done.
        Successful = "SUCCESSFUL",
        /// Ended in error; `reason` says why.
        Failed = "FAILED",
    }
);

/// Checks an operation's free-text `reason`: `^[a-zA-Z0-9 ]{1,64}$`.
///
/// # Errors
/// A format error naming `reason`, which never repeats the text.
pub fn reason_text(reason: Option<String>) -> Result<Option<String>, FieldError> {
    match reason {
        Some(r) if !REASON.is_match(&r) => Err(FieldError::format(
            "reason",
            "must be 1 to 64 letters, digits or spaces",
        )),
        other => Ok(other),
    }
}

/// The optional body of a delete: a free-text reason and who decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteReason {
    reason: Option<String>,
    code: DeleteReasonCode,
}

impl DeleteReason {
    /// Parses the `reason` text and `reasonCode` of a delete.
    ///
    /// # Errors
    /// `reason` off its pattern is a format error; an unknown `reasonCode` is a value error.
    pub fn parse(reason: Option<String>, code: Option<&str>) -> Result<Self, FieldError> {
        let reason = reason_text(reason)?;
        let code = match code {
            None => DeleteReasonCode::IssuerDecision,
            Some(c) => DeleteReasonCode::parse(c).ok_or_else(|| {
                FieldError::value("reasonCode", "must be USER_DECISION or ISSUER_DECISION")
            })?,
        };
        Ok(Self { reason, code })
    }

    /// The issuer's free text, if any.
    #[must_use]
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// Who decided.
    #[must_use]
    pub fn code(&self) -> DeleteReasonCode {
        self.code
    }
}

impl Default for DeleteReason {
    fn default() -> Self {
        Self {
            reason: None,
            code: DeleteReasonCode::IssuerDecision,
        }
    }
}
