//! The card life cycle (contract section 6): the operations, their reason codes, and the one
//! table saying which code each operation takes and which transition each state allows.
//! Everything that decides a life-cycle question asks this module; nothing else lists a code.

use crate::consumer::OperationKind;
use crate::field::FieldError;

use super::CardState;

/// A reason code of a card operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReasonCode {
    CardLost,
    CardStolen,
    CardBroken,
    Fraud,
    UserDecision,
    IssuerDecision,
    CardFound,
    ClosedAccount,
    ClosedCard,
    Expiry,
}

const ALL_CODES: [ReasonCode; 10] = [
    ReasonCode::CardLost,
    ReasonCode::CardStolen,
    ReasonCode::CardBroken,
    ReasonCode::Fraud,
    ReasonCode::UserDecision,
    ReasonCode::IssuerDecision,
    ReasonCode::CardFound,
    ReasonCode::ClosedAccount,
    ReasonCode::ClosedCard,
    ReasonCode::Expiry,
];

impl ReasonCode {
    /// The wire and database form.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CardLost => "CARD_LOST",
            Self::CardStolen => "CARD_STOLEN",
            Self::CardBroken => "CARD_BROKEN",
            Self::Fraud => "FRAUD",
            Self::UserDecision => "USER_DECISION",
            Self::IssuerDecision => "ISSUER_DECISION",
            Self::CardFound => "CARD_FOUND",
            Self::ClosedAccount => "CLOSED_ACCOUNT",
            Self::ClosedCard => "CLOSED_CARD",
            Self::Expiry => "EXPIRY",
        }
    }

    /// Parses the wire form.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        ALL_CODES.into_iter().find(|c| c.as_str() == s)
    }

    /// The resume codes a suspension for this reason allows; none means it is never resumed
    /// (the card is replaced or deleted instead).
    #[must_use]
    pub fn resumable_with(self) -> &'static [ReasonCode] {
        use ReasonCode::{CardFound, IssuerDecision, UserDecision};
        match self {
            Self::CardLost => &[CardFound],
            Self::UserDecision => &[UserDecision, IssuerDecision],
            Self::IssuerDecision => &[IssuerDecision],
            _ => &[],
        }
    }
}

/// A card life-cycle operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardOperation {
    Suspend,
    Resume,
    Delete,
    Renew,
    Replace,
    Activate,
}

/// Every operation, for tables and tests.
pub const OPERATIONS: [CardOperation; 6] = [
    CardOperation::Suspend,
    CardOperation::Resume,
    CardOperation::Delete,
    CardOperation::Renew,
    CardOperation::Replace,
    CardOperation::Activate,
];

impl CardOperation {
    /// The name in the path (`operations:NAME`) and in the database.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Suspend => "suspend",
            Self::Resume => "resume",
            Self::Delete => "delete",
            Self::Renew => "renew",
            Self::Replace => "replace",
            Self::Activate => "activate",
        }
    }

    /// Parses the name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        OPERATIONS.into_iter().find(|o| o.as_str() == s)
    }

    /// Its trail entry's kind.
    #[must_use]
    pub fn kind(self) -> OperationKind {
        match self {
            Self::Suspend => OperationKind::CardSuspend,
            Self::Resume => OperationKind::CardResume,
            Self::Delete => OperationKind::CardDelete,
            Self::Renew => OperationKind::CardRenew,
            Self::Replace => OperationKind::CardReplace,
            Self::Activate => OperationKind::CardActivate,
        }
    }

    /// The reason codes this operation takes (the table of section 6).
    #[must_use]
    pub fn codes(self) -> &'static [ReasonCode] {
        use ReasonCode::{
            CardBroken, CardFound, CardLost, CardStolen, ClosedAccount, ClosedCard, Expiry, Fraud,
            IssuerDecision, UserDecision,
        };
        match self {
            Self::Suspend => &[
                CardLost,
                CardStolen,
                CardBroken,
                Fraud,
                UserDecision,
                IssuerDecision,
            ],
            Self::Resume => &[CardFound, IssuerDecision, UserDecision],
            Self::Delete => &[
                ClosedAccount,
                ClosedCard,
                CardLost,
                CardStolen,
                Fraud,
                UserDecision,
                IssuerDecision,
            ],
            Self::Replace => &[
                CardLost,
                CardStolen,
                CardBroken,
                Fraud,
                IssuerDecision,
                UserDecision,
            ],
            Self::Renew => &[Expiry, IssuerDecision],
            Self::Activate => &[IssuerDecision, UserDecision],
        }
    }

    /// The code taken when the body has none; `None` where `reasonCode` is required.
    #[must_use]
    pub fn default_code(self) -> Option<ReasonCode> {
        match self {
            Self::Renew => Some(ReasonCode::Expiry),
            Self::Activate => Some(ReasonCode::IssuerDecision),
            _ => None,
        }
    }

    /// Reads a body's `reasonCode` for this operation.
    ///
    /// # Errors
    /// An absent required code is a format error; a code that is not one of this operation's
    /// is a value error. Both name `reasonCode`.
    pub fn reason_code(self, raw: Option<&str>) -> Result<ReasonCode, FieldError> {
        let Some(raw) = raw else {
            return self
                .default_code()
                .ok_or_else(|| FieldError::format("reasonCode", "is required"));
        };
        ReasonCode::parse(raw)
            .filter(|c| self.codes().contains(c))
            .ok_or_else(|| {
                FieldError::value("reasonCode", "is not a reason code of this operation")
            })
    }

    /// What this operation with `code` does to a card standing as `card`, or `None` when the
    /// table does not allow it. The identical-retry rule is checked before this, by the caller.
    #[must_use]
    pub fn effect(self, code: ReasonCode, card: &Standing) -> Option<Effect> {
        if card.state.is_final() || !self.codes().contains(&code) {
            return None;
        }
        let to = |state| Some(Effect::Becomes(state));
        match (self, card.state) {
            (Self::Suspend, CardState::Active) => to(CardState::Suspended),
            (Self::Resume, CardState::Suspended) => card
                .reason
                .filter(|r| r.resumable_with().contains(&code))
                .and(to(CardState::Active)),
            (Self::Delete, _) => to(CardState::Deleted),
            (Self::Replace, _) => to(CardState::Replaced),
            (Self::Renew, _) => Some(Effect::Renews),
            (Self::Activate, CardState::Inactive) => to(CardState::Active),
            (Self::Activate, _) if card.renewing => Some(Effect::TakesRenewal),
            _ => None,
        }
    }
}

/// What the life-cycle rules need to know of a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub state: CardState,
    /// The reason code of the operation that set the current state.
    pub reason: Option<ReasonCode>,
    /// Whether a renewal waits for activation (`ongoingOperation: "RENEWAL"`).
    pub renewing: bool,
}

/// What an allowed operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The card moves to this state, with the operation's code as its `stateReason` (an
    /// INACTIVE card activated also takes a waiting renewal).
    Becomes(CardState),
    /// A new expiry; the state is kept.
    Renews,
    /// A waiting renewal becomes current; the state is kept.
    TakesRenewal,
}

#[cfg(test)]
mod tests;
