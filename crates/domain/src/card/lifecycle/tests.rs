//! Every row of the reason table, allowed and refused.

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
