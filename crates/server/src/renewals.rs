//! The automatic renewal of created cards (contract section 6, "Renew"): D1 renews the cards
//! it created itself. Every `cards.auto_renew_interval_secs` one node (whichever takes the
//! run's lease) renews the created cards whose expiry falls within `cards.auto_renew_days`,
//! each through the life cycle's own renew, so each gets the trail entry, the notification
//! and the `ongoingOperation: "RENEWAL"` an issuer's renew would give it.

use std::sync::Arc;
use std::time::Duration;

use d1_domain::card::lifecycle::ReasonCode;
use d1_store::{CardAction, OperateCard, OperateOutcome, Store, StoreResult, TrailContext};
use time::{Date, Month};
use tokio::sync::watch;

use crate::config::CardsConfig;

/// The scheduled run's name, the key of its lease.
const RUN: &str = "card-auto-renewal";
/// Cards read at once.
const PAGE: u32 = 500;
/// How far back an expired created card is still renewed.
const MONTHS_BACK: i32 = 24;

/// Renews due cards every interval until `stop` turns true.
///
/// # Errors
/// None today: a failed run is logged and tried again at the next interval. The result lets
/// its supervisor treat every task alike.
pub async fn run(
    store: Arc<dyn Store>,
    config: CardsConfig,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let interval = Duration::from_secs(config.auto_renew_interval_secs.max(1));
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        if config.auto_renew_days > 0 {
            match renew_due(store.as_ref(), &config, interval).await {
                Ok(0) => {}
                Ok(renewed) => tracing::info!(renewed, "created cards renewed automatically"),
                Err(e) => {
                    tracing::warn!(error = %e, "the automatic card renewal failed; it runs again at the next interval")
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.changed() => {}
        }
    }
}

/// One run, if this node takes its lease: every due card renewed; how many.
async fn renew_due(
    store: &dyn Store,
    config: &CardsConfig,
    interval: Duration,
) -> StoreResult<u64> {
    let lease_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
    if !store.take_scheduled_run(RUN, lease_ms).await? {
        return Ok(0);
    }
    let today = time::OffsetDateTime::now_utc().date();
    let months = due_expiries(today, config.auto_renew_days);
    let mut renewed = 0;
    loop {
        let due = store.due_renewals(months.clone(), PAGE).await?;
        let mut progressed = false;
        for (issuer_id, card_id) in due {
            let cmd = OperateCard {
                issuer_id,
                card_id,
                action: CardAction::Renew { data: None },
                reason_code: ReasonCode::Expiry,
                reason: None,
                trail: TrailContext {
                    correlation_id: None,
                    user_id: None,
                    aggregator_id: None,
                },
            };
            match store.operate_card(cmd).await? {
                OperateOutcome::Done { .. } => {
                    renewed += 1;
                    progressed = true;
                }
                // Changed by a request since it was read; the next run looks again.
                other => tracing::debug!(outcome = ?other, "a due card was not renewed"),
            }
        }
        if !progressed {
            return Ok(renewed);
        }
    }
}

/// The expiries (MMYY) that fall within `days` of `today`: a card is valid to the end of its
/// expiry month, so every month whose last day is at most `days` away, back to
/// [`MONTHS_BACK`] months ago for cards already expired.
fn due_expiries(today: Date, days: u32) -> Vec<String> {
    let horizon = today.saturating_add(time::Duration::days(i64::from(days)));
    let month_index = |d: Date| d.year() * 12 + i32::from(u8::from(d.month())) - 1;
    let last = {
        let mut last = month_index(horizon);
        // The horizon's own month counts only once its last day is within reach.
        if horizon.day() < horizon.month().length(horizon.year()) {
            last -= 1;
        }
        last
    };
    (month_index(today) - MONTHS_BACK..=last)
        .filter_map(|m| {
            let month = Month::try_from(u8::try_from(m.rem_euclid(12) + 1).ok()?).ok()?;
            Some(format!(
                "{:02}{:02}",
                u8::from(month),
                m.div_euclid(12) % 100
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::due_expiries;

    #[test]
    fn a_month_is_due_once_its_last_day_is_within_reach() {
        let due = due_expiries(date!(2026 - 12 - 01), 30);
        assert_eq!(due.last().map(String::as_str), Some("1226"));
        let due = due_expiries(date!(2026 - 12 - 02), 30);
        assert_eq!(due.last().map(String::as_str), Some("1226"));
        let due = due_expiries(date!(2026 - 12 - 01), 61);
        assert_eq!(due.last().map(String::as_str), Some("0127"));
        let due = due_expiries(date!(2026 - 12 - 01), 60);
        assert_eq!(due.last().map(String::as_str), Some("1226"));
    }

    #[test]
    fn expired_months_stay_due_two_years_back() {
        let due = due_expiries(date!(2026 - 12 - 15), 30);
        assert_eq!(due.first().map(String::as_str), Some("1224"));
        assert_eq!(due.len(), 25);
    }

    #[test]
    fn nothing_is_due_before_this_month_ends_when_days_is_short() {
        let due = due_expiries(date!(2026 - 12 - 01), 1);
        assert_eq!(due.last().map(String::as_str), Some("1126"));
    }
}
