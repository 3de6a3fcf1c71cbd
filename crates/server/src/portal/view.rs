//! The consumer page's markup: the consumer's facts, its PI (masked unless revealed), its
//! cards with the actions the operator's role allows, and a page of its operations trail.

use axum::http::StatusCode;
use d1_domain::card::lifecycle::CardOperation;
use d1_domain::card::CardState;
use d1_domain::consumer::{ConsumerState, DeleteReasonCode, PiSource};
use d1_domain::PersonalInformation;
use d1_store::{CardView, OperatorRole};
use maud::{html, Markup};

use super::consumer::Loaded;
use super::layout::{badge, notice, time, Chrome, Page};
use super::mask;
use super::session::Operator;

/// How the page is shown: PI revealed or not, and a notice on top.
pub struct Shown {
    pub revealed: bool,
    /// `(kind, text)`: `ok` after an action, `error` with a refusal's message.
    pub notice: Option<(&'static str, String)>,
}

/// The notice of `?done=`, after an action redirected here; unknown words show nothing.
#[must_use]
pub fn done_text(done: &str) -> Option<&'static str> {
    Some(match done {
        "suspend" => "The card is suspended.",
        "resume" => "The card is active again.",
        "delete" => "The card is deleted.",
        "replace" => "The card is replaced; the new card is in the list.",
        "delete-consumer" => "The consumer is deleted, with all its cards.",
        _ => return None,
    })
}

/// The whole consumer page.
#[must_use]
pub fn page(
    chrome: &Chrome,
    operator: &Operator,
    loaded: &Loaded,
    shown: &Shown,
    status: StatusCode,
) -> Page {
    let c = &loaded.consumer;
    let issuer = loaded.issuer.issuer_id.as_str();
    let here = chrome.href(&format!(
        "/issuers/{issuer}/consumers/{}",
        c.consumer_id.as_str()
    ));
    let live = c.state == ConsumerState::Active;
    let body = html! {
        @if let Some((kind, text)) = &shown.notice { (notice(kind, text)) }
        h1 { "Consumer " span.mono #consumer-id { (c.consumer_id.as_str()) } }
        section.panel #consumer {
            dl.facts {
                dt { "Issuer" } dd.mono #issuer-id { (issuer) }
                dt { "State" } dd #consumer-state { (badge(c.state.as_str())) }
                dt { "PI source" } dd #pi-source { (c.pi_source.as_str()) }
                dt { "Registered" } dd { (time(c.created_at)) }
                dt { "Last change" } dd { (time(c.updated_at)) }
            }
        }
        h2 { "Personal information" }
        section.panel #pi { (pi_section(chrome, operator, loaded, shown.revealed, &here)) }
        h2 { "Cards" }
        (cards_table(chrome, operator, loaded, &here, live))
        h2 { "Operations" }
        (trail_table(loaded, &here))
        @if live && operator.role >= OperatorRole::Manager {
            h2 { "Delete the consumer" }
            section.panel {
                form #delete-consumer.actions method="post" action={ (here) "/delete" } {
                    (chrome.csrf_field())
                    label for="delete-consumer-reason" { "Reason" }
                    select #delete-consumer-reason name="reasonCode" {
                        @for code in [DeleteReasonCode::IssuerDecision, DeleteReasonCode::UserDecision] {
                            option value=(code.as_str()) { (code.as_str()) }
                        }
                    }
                    button.danger type="submit" { "Delete consumer and all its cards" }
                }
            }
        }
    };
    chrome.page(
        status,
        &format!("Consumer {}", c.consumer_id.as_str()),
        &body,
    )
}

fn pi_section(
    chrome: &Chrome,
    operator: &Operator,
    loaded: &Loaded,
    revealed: bool,
    here: &str,
) -> Markup {
    let c = &loaded.consumer;
    if c.pi_source == PiSource::Issuer {
        return html! {
            p #pi-at-issuer { "The issuer keeps this consumer's personal information. \
                The portal does not fetch it." }
        };
    }
    let Some(pi) = &c.pi else {
        return html! { p #pi-none { "No personal information is stored for this consumer." } };
    };
    html! {
        dl.facts #pi-facts data-revealed=(revealed) {
            @for (label, value) in pi_rows(pi, revealed) {
                dt { (label) } dd { (value) }
            }
        }
        @if !revealed {
            form #reveal method="post" action={ (here) "/reveal" } {
                (chrome.csrf_field())
                p {
                    button.quiet type="submit" { "Reveal" }
                    @if operator.role < OperatorRole::Manager {
                        " " span.muted { "(manager and admin only)" }
                    } @else {
                        " " span.muted { "Revealing is recorded in the audit trail." }
                    }
                }
            }
        }
    }
}

/// The PI's rows, masked or in clear.
fn pi_rows(pi: &PersonalInformation, clear: bool) -> Vec<(&'static str, String)> {
    let keep = |v: &str, masked: fn(&str) -> String| if clear { v.to_owned() } else { masked(v) };
    let mut rows = Vec::new();
    let names = [pi.first_name(), pi.middle_name(), pi.last_name()];
    if names.iter().any(Option::is_some) {
        let name = if clear {
            names
                .iter()
                .flatten()
                .copied()
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            mask::initials(&names)
        };
        rows.push(("Name", name));
    }
    if let Some(t) = pi.title() {
        rows.push(("Title", keep(t, mask::text)));
    }
    if let Some(d) = pi.date_of_birth() {
        rows.push(("Date of birth", keep(d, mask::date)));
    }
    if let Some(e) = pi.email() {
        rows.push(("Email", keep(e, mask::email)));
    }
    if let Some(p) = pi.mobile_phone_number() {
        let shown = if clear {
            format!("{} {}", p.country_code, p.phone_number)
        } else {
            mask::phone(p)
        };
        rows.push(("Mobile phone", shown));
    }
    if let Some(a) = pi.residency_address() {
        let shown = if clear {
            mask::address_clear(a)
        } else {
            mask::address(a)
        };
        rows.push(("Address", shown));
    }
    if let Some(l) = pi.language() {
        rows.push(("Language", keep(l, mask::text)));
    }
    rows
}

fn cards_table(
    chrome: &Chrome,
    operator: &Operator,
    loaded: &Loaded,
    here: &str,
    live: bool,
) -> Markup {
    if loaded.cards.is_empty() {
        return html! { section.panel { p #no-cards { "No cards." } } };
    }
    html! {
        table #cards {
            thead { tr {
                th { "Card" } th { "Scheme" } th { "Last four" } th { "Expiry" } th { "State" }
                th { "Ongoing" } th { "Click to Pay" } th { "Actions" }
            } }
            tbody {
                @for (card, ctp) in loaded.cards.iter().zip(&loaded.click_to_pay) {
                    tr data-card-id=(card.card_id.as_str()) {
                        td {
                            span.mono { (card.card_id.as_str()) }
                            @if let Some(r) = &card.replaces { br; span.muted { "replaces " (r) } }
                            @if let Some(r) = &card.replaced_by { br; span.muted { "replaced by " (r) } }
                        }
                        td { (card.scheme) }
                        td.mono.last4 { (card.last4) }
                        td {
                            (card.expiry)
                            @if let Some(r) = &card.renewed_expiry { br; span.muted { "renewed " (r) } }
                        }
                        td.state {
                            (badge(card.state.as_str()))
                            @if let Some(r) = &card.state_reason { br; span.muted.state-reason { (r) } }
                        }
                        td.ongoing { (card.ongoing_operation.as_deref().unwrap_or("–")) }
                        td.click-to-pay { (ctp) }
                        td { @if live { (card_actions(chrome, operator, card, here)) } }
                    }
                }
            }
        }
    }
}

/// The forms of the operations the card's state and the operator's role allow.
fn card_actions(chrome: &Chrome, operator: &Operator, card: &CardView, here: &str) -> Markup {
    let state = card.state;
    let final_state = matches!(state, CardState::Deleted | CardState::Replaced);
    let manager = operator.role >= OperatorRole::Manager;
    let mut ops = Vec::new();
    if state == CardState::Active {
        ops.push(CardOperation::Suspend);
    }
    if state == CardState::Suspended {
        ops.push(CardOperation::Resume);
    }
    if manager && !final_state {
        ops.push(CardOperation::Replace);
        ops.push(CardOperation::Delete);
    }
    let action =
        |op: CardOperation| format!("{here}/cards/{}/{}", card.card_id.as_str(), op.as_str());
    html! {
        @for op in ops {
            form.card-action data-operation=(op.as_str()) method="post" action=(action(op)) {
                (chrome.csrf_field())
                select name="reasonCode" aria-label="Reason" {
                    @for code in op.codes() { option value=(code.as_str()) { (code.as_str()) } }
                }
                @if op == CardOperation::Replace {
                    input type="text" name="newCardId" placeholder="new cardId"
                        aria-label="New cardId" size="12";
                }
                @let danger = matches!(op, CardOperation::Delete);
                button class=(if danger { "danger" } else { "quiet" }) type="submit" {
                    (capitalised(op.as_str()))
                }
            }
        }
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

fn trail_table(loaded: &Loaded, here: &str) -> Markup {
    let trail = &loaded.trail;
    html! {
        @if trail.operations.is_empty() {
            section.panel { p { "No operations on this page." } }
        } @else {
            table #trail {
                thead { tr {
                    th { "Started" } th { "Operation" } th { "Status" } th { "Card" }
                    th { "Reason" } th { "User" } th { "Operation id" }
                } }
                tbody {
                    @for o in &trail.operations {
                        tr data-operation-id=(o.operation_id) {
                            td { (time(o.start_time)) }
                            td { (o.operation.as_str()) }
                            td { (badge(o.status.as_str())) }
                            td.mono { (o.card_id.as_deref().unwrap_or("–")) }
                            td { (o.reason_code.as_deref().unwrap_or("–"))
                                 @if let Some(r) = &o.reason { " · " (r) } }
                            td { (o.user_id.as_deref().unwrap_or("–")) }
                            td.mono.muted { (o.operation_id) }
                        }
                    }
                }
            }
        }
        p.pager {
            @if loaded.page.is_some() { a #first-page href=(here) { "Newest" } " " }
            @if let Some(next) = trail.next { a #next-page href={ (here) "?page=" (next) } { "Older →" } }
        }
    }
}
