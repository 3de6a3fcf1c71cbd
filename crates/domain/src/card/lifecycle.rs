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
mod tests {
    use super::CardOperation::{Activate, Delete, Renew, Replace, Resume, Suspend};
    use super::ReasonCode::*;
    use super::*;

    fn standing(state: CardState, reason: Option<ReasonCode>) -> Standing {
        Standing {
            state,
            reason,
            renewing: false,
        }
    }

    fn active() -> Standing {
        standing(CardState::Active, None)
    }

    fn suspended(reason: ReasonCode) -> Standing {
        standing(CardState::Suspended, Some(reason))
    }

    #[test]
    fn every_operation_takes_exactly_the_codes_of_the_table() {
        let table: [(CardOperation, &[ReasonCode]); 6] = [
            (
                Suspend,
                &[
                    CardLost,
                    CardStolen,
                    CardBroken,
                    Fraud,
                    UserDecision,
                    IssuerDecision,
                ],
            ),
            (Resume, &[CardFound, IssuerDecision, UserDecision]),
            (
                Delete,
                &[
                    ClosedAccount,
                    ClosedCard,
                    CardLost,
                    CardStolen,
                    Fraud,
                    UserDecision,
                    IssuerDecision,
                ],
            ),
            (
                Replace,
                &[
                    CardLost,
                    CardStolen,
                    CardBroken,
                    Fraud,
                    IssuerDecision,
                    UserDecision,
                ],
            ),
            (Renew, &[Expiry, IssuerDecision]),
            (Activate, &[IssuerDecision, UserDecision]),
        ];
        for (op, codes) in table {
            for code in ALL_CODES {
                let read = op.reason_code(Some(code.as_str()));
                if codes.contains(&code) {
                    assert_eq!(read, Ok(code), "{op:?} takes {code:?}");
                } else {
                    let e = read.unwrap_err();
                    assert_eq!(
                        (e.kind, e.field.as_str()),
                        (crate::FieldErrorKind::Value, "reasonCode"),
                        "{op:?} refuses {code:?}"
                    );
                }
            }
            let unknown = op.reason_code(Some("LOST")).unwrap_err();
            assert_eq!(unknown.kind, crate::FieldErrorKind::Value);
        }
    }

    #[test]
    fn renew_and_activate_have_defaults_and_the_others_require_a_code() {
        assert_eq!(Renew.reason_code(None), Ok(Expiry));
        assert_eq!(Activate.reason_code(None), Ok(IssuerDecision));
        for op in [Suspend, Resume, Delete, Replace] {
            let e = op.reason_code(None).unwrap_err();
            assert_eq!(
                (e.kind, e.field.as_str()),
                (crate::FieldErrorKind::Format, "reasonCode")
            );
        }
    }

    #[test]
    fn each_suspension_reason_allows_exactly_its_resume_codes() {
        let table: [(ReasonCode, &[ReasonCode]); 6] = [
            (CardLost, &[CardFound]),
            (CardStolen, &[]),
            (CardBroken, &[]),
            (Fraud, &[]),
            (UserDecision, &[UserDecision, IssuerDecision]),
            (IssuerDecision, &[IssuerDecision]),
        ];
        for (suspension, allowed) in table {
            assert_eq!(
                Suspend.effect(suspension, &active()),
                Some(Effect::Becomes(CardState::Suspended))
            );
            for resume in Resume.codes() {
                let effect = Resume.effect(*resume, &suspended(suspension));
                if allowed.contains(resume) {
                    assert_eq!(effect, Some(Effect::Becomes(CardState::Active)));
                } else {
                    assert_eq!(effect, None, "{resume:?} after {suspension:?} is refused");
                }
            }
            // Suspended for any reason, a card may still be replaced or deleted.
            assert_eq!(
                Replace.effect(CardLost, &suspended(suspension)),
                Some(Effect::Becomes(CardState::Replaced))
            );
            assert_eq!(
                Delete.effect(CardStolen, &suspended(suspension)),
                Some(Effect::Becomes(CardState::Deleted))
            );
            // Suspended again, for whatever reason, is refused (a retry is the caller's rule).
            assert_eq!(Suspend.effect(CardLost, &suspended(suspension)), None);
        }
    }

    #[test]
    fn resume_needs_a_suspended_card_and_suspend_an_active_one() {
        assert_eq!(Resume.effect(IssuerDecision, &active()), None);
        let inactive = standing(CardState::Inactive, None);
        assert_eq!(Resume.effect(IssuerDecision, &inactive), None);
        assert_eq!(Suspend.effect(CardLost, &inactive), None);
        // A suspension without a recorded reason is never resumed.
        assert_eq!(
            Resume.effect(IssuerDecision, &standing(CardState::Suspended, None)),
            None
        );
    }

    #[test]
    fn final_states_allow_nothing() {
        for state in [CardState::Deleted, CardState::Replaced] {
            for op in OPERATIONS {
                for code in op.codes() {
                    assert_eq!(op.effect(*code, &standing(state, Some(*code))), None);
                }
            }
        }
        assert!(CardState::Deleted.is_final() && CardState::Replaced.is_final());
        assert!(!CardState::Suspended.is_final());
    }

    #[test]
    fn renew_keeps_the_state_and_activate_takes_an_inactive_card_or_a_renewal() {
        for state in [CardState::Active, CardState::Inactive, CardState::Suspended] {
            assert_eq!(
                Renew.effect(Expiry, &standing(state, None)),
                Some(Effect::Renews)
            );
        }
        assert_eq!(
            Activate.effect(IssuerDecision, &standing(CardState::Inactive, None)),
            Some(Effect::Becomes(CardState::Active))
        );
        assert_eq!(Activate.effect(UserDecision, &active()), None);
        let renewing = Standing {
            renewing: true,
            ..active()
        };
        assert_eq!(
            Activate.effect(UserDecision, &renewing),
            Some(Effect::TakesRenewal)
        );
        let renewing_suspended = Standing {
            renewing: true,
            ..suspended(CardStolen)
        };
        assert_eq!(
            Activate.effect(IssuerDecision, &renewing_suspended),
            Some(Effect::TakesRenewal)
        );
        // A code the operation does not take is never an effect, whatever the state.
        assert_eq!(Activate.effect(Expiry, &renewing), None);
    }

    #[test]
    fn names_and_codes_round_trip_and_name_their_trail_kinds() {
        for op in OPERATIONS {
            assert_eq!(CardOperation::parse(op.as_str()), Some(op));
            assert!(op.kind().notified_as().is_some());
        }
        for code in ALL_CODES {
            assert_eq!(ReasonCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(CardOperation::parse("bogus"), None);
        assert_eq!(Delete.kind(), OperationKind::CardDelete);
    }
}
