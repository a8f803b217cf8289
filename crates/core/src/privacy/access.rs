//! Access requests (GDPR article 15): everything the workspace holds about a
//! person, as a JSON file ([`access_export`]) and a readable page to print
//! or save as PDF ([`access_report_html`]).
//!
//! The export holds the contact's fields, its consent ledger with readable
//! labels (current status per purpose and every event), the rows of every
//! record that references or describes the person ([`related_rows`]), and the
//! change history of the contact (who changed which fields when, with member
//! names; [`crate::audit::history`]).
//!
//! # Guarantees and limits
//!
//! - Every text in the page is HTML-escaped, names and notes included, so a
//!   contact called `<script>` prints as text and runs nothing.
//! - File names carry the record id and the date, never the person's name.
//! - Related records appear with what their rows hold (title, subtitle,
//!   columns); a record type with more personal data in its document should
//!   add it when it is introduced. Free text elsewhere that names the person
//!   without a reference is not found (see [`super::references`]).
//! - The export is a snapshot taken on this device: data not yet synced from
//!   other devices is not in it.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::audit::{field_label, AuditEntry};
use crate::consent::{ConsentStatus, PurposeId};
use crate::contact::{Contact, Labeled};
use crate::ids::{EntryId, MemberId, RecordId};
use crate::record::Row;
use crate::workspace::Workspace;
use crate::Timestamp;

use super::references::{self, REFS_COLUMN};

/// What an access export is made of.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    pub contact: &'a Contact,
    /// The contact document's audit entries ([`crate::audit::history`]).
    pub history: &'a [AuditEntry],
    /// Rows of the records that reference the contact ([`related_rows`]).
    pub related: &'a [&'a Row],
    pub workspace: &'a Workspace,
    pub generated_at: Timestamp,
    pub generated_by: MemberId,
}

/// The rows of every record that references `subject` (unreadable
/// reference columns included, so nothing is left out silently).
pub fn related_rows<'a>(subject: RecordId, rows: impl IntoIterator<Item = &'a Row>) -> Vec<&'a Row> {
    let found = references::referencing(subject, rows);
    found.found.into_iter().map(|(row, _)| row).chain(found.unreadable.into_iter().map(|(row, _)| row)).collect()
}

/// `access-request-<record id>-<YYYY-MM-DD>.<ext>`: no personal data.
pub fn file_name(req: &AccessRequest<'_>, ext: &str) -> String {
    let date: String = req.generated_at.to_rfc3339().chars().take(10).collect();
    format!("access-request-{}-{date}.{ext}", req.contact.id)
}

fn member(ws: &Workspace, id: MemberId) -> Value {
    json!({ "id": id.to_string(), "name": ws.member_name(id) })
}

fn entries(list: &[Labeled], primary: Option<EntryId>) -> Value {
    let primary = primary.or_else(|| list.first().map(|e| e.id));
    list.iter().map(|e| json!({ "label": e.label, "value": e.value, "primary": Some(e.id) == primary })).collect()
}

fn purpose_name(ws: &Workspace, id: &PurposeId) -> String {
    ws.purposes.get(id).map_or_else(|| id.to_string(), |p| p.name.clone())
}

/// Every purpose of the workspace and of the ledger, in id order.
fn purposes(req: &AccessRequest<'_>) -> BTreeSet<PurposeId> {
    req.workspace.purposes.keys().cloned().chain(req.contact.consent.purposes()).collect()
}

/// The custom values with their field labels.
fn custom(req: &AccessRequest<'_>) -> Vec<(String, String, String)> {
    req.contact
        .custom
        .iter()
        .map(|(k, v)| {
            let label = req.workspace.custom_fields.get(k).map_or_else(|| k.clone(), |d| d.label.clone());
            (k.clone(), label, v.clone())
        })
        .collect()
}

/// The access export as JSON (see the module doc).
pub fn access_export(req: &AccessRequest<'_>) -> Value {
    let c = req.contact;
    let ws = req.workspace;
    let statuses: Vec<Value> = purposes(req)
        .iter()
        .map(|p| {
            let status = c.consent.status(p);
            json!({
                "purpose": p.as_str(),
                "purpose_name": purpose_name(ws, p),
                "lawful_basis": ws.purposes.get(p).map(|d| d.lawful_basis.label()),
                "status": status.as_str(),
                "status_label": status.label(),
            })
        })
        .collect();
    let events: Vec<Value> = c
        .consent
        .timeline(None)
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id.to_string(),
                "purpose": e.purpose.as_str(),
                "purpose_name": purpose_name(ws, &e.purpose),
                "action": e.action.as_str(),
                "action_label": e.action.label(),
                "recorded_at": e.recorded_at.to_rfc3339(),
                "lawful_basis": e.lawful_basis.as_str(),
                "lawful_basis_label": e.lawful_basis.label(),
                "source": e.source.as_str(),
                "source_label": e.source.label(),
                "recorded_by": member(ws, e.recorded_by),
                "note": e.note,
            })
        })
        .collect();
    let related: Vec<Value> = req
        .related
        .iter()
        .map(|r| {
            let columns: serde_json::Map<String, Value> = r
                .columns
                .iter()
                .filter(|(k, _)| k.as_str() != REFS_COLUMN)
                .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                .collect();
            json!({
                "id": r.id.to_string(),
                "kind": r.kind.as_str(),
                "title": r.title,
                "subtitle": r.subtitle,
                "columns": columns,
                "tags": r.tags,
                "updated_at": r.updated_at.to_rfc3339(),
            })
        })
        .collect();
    json!({
        "format": "rapport.access_export",
        "version": 1,
        "generated_at": req.generated_at.to_rfc3339(),
        "generated_by": member(ws, req.generated_by),
        "workspace": { "id": ws.id.to_string(), "name": ws.name },
        "subject": {
            "id": c.id.to_string(),
            "display_name": c.display_name(),
            "given_name": c.given_name,
            "family_name": c.family_name,
            "emails": entries(&c.emails, c.primary_email),
            "phones": entries(&c.phones, c.primary_phone),
            "company_name": c.company_name,
            "title": c.title,
            "address": {
                "street": c.address.street,
                "city": c.address.city,
                "region": c.address.region,
                "postal_code": c.address.postal_code,
                "country": c.address.country,
            },
            "tags": c.tags,
            "owner": c.owner.map(|o| member(ws, o)),
            "notes": c.notes,
            "custom": custom(req).into_iter().map(|(k, label, v)| json!({ "field": k, "label": label, "value": v })).collect::<Vec<_>>(),
            "created_at": c.created_at.to_rfc3339(),
            "created_by": member(ws, c.created_by),
            "updated_at": c.updated_at.to_rfc3339(),
            "updated_by": member(ws, c.updated_by),
            "deleted": c.deleted,
            "restricted": c.restriction.map(|r| json!({ "since": r.since.to_rfc3339(), "by": member(ws, r.by) })),
            "anonymised_at": c.anonymised_at.map(Timestamp::to_rfc3339),
        },
        "consent": { "status": statuses, "events": events },
        "related_records": related,
        "history": req.history.iter().map(|e| crate::audit::entry_json(e, ws)).collect::<Vec<_>>(),
    })
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Pushes a table with a header row; every cell is escaped.
fn table(out: &mut String, head: &[&str], rows: &[Vec<String>]) {
    out.push_str("<table><thead><tr>");
    for h in head {
        let _ = write!(out, "<th scope=\"col\">{}</th>", escape_html(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape_html(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

const STYLE: &str =
    "body{font:11pt/1.45 system-ui,sans-serif;color:#111;max-width:60rem;margin:2rem auto;padding:0 1rem}\
h1{font-size:1.6rem;margin:0 0 .25rem}h2{font-size:1.2rem;margin:2rem 0 .5rem;border-bottom:1px solid #999}\
h3{font-size:1rem;margin:1.25rem 0 .5rem}p.meta{color:#444;margin:0}\
table{border-collapse:collapse;width:100%;margin:.25rem 0}th,td{text-align:left;vertical-align:top;\
padding:.3rem .5rem;border-bottom:1px solid #ddd;white-space:pre-wrap}th{background:#f3f3f3}\
tbody th{width:14rem;background:none;font-weight:600}\
@media print{body{margin:0;max-width:none}h2{break-after:avoid}tr{break-inside:avoid}}";

/// A printable page of the access export; every text is HTML-escaped.
pub fn access_report_html(req: &AccessRequest<'_>) -> String {
    let c = req.contact;
    let ws = req.workspace;
    let name = c.display_name();
    let mut out = String::with_capacity(8 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Personal data held about {}</title>\
         <style>{STYLE}</style></head><body><header><h1>Personal data held about {}</h1>\
         <p class=\"meta\">Workspace {} · generated {} by {} · record {}</p></header>",
        escape_html(&name),
        escape_html(&name),
        escape_html(&ws.name),
        escape_html(&req.generated_at.to_rfc3339()),
        escape_html(&ws.member_name(req.generated_by)),
        escape_html(&c.id.to_string()),
    );

    let lines = |list: &[Labeled], primary: Option<EntryId>| -> String {
        let primary = primary.or_else(|| list.first().map(|e| e.id));
        list.iter()
            .map(|e| {
                let star = if Some(e.id) == primary { " (primary)" } else { "" };
                if e.label.is_empty() {
                    format!("{}{star}", e.value)
                } else {
                    format!("{}: {}{star}", e.label, e.value)
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut details: Vec<(String, String)> = vec![
        ("Given name".into(), c.given_name.clone()),
        ("Family name".into(), c.family_name.clone()),
        ("Email addresses".into(), lines(&c.emails, c.primary_email)),
        ("Phone numbers".into(), lines(&c.phones, c.primary_phone)),
        ("Company".into(), c.company_name.clone()),
        ("Job title".into(), c.title.clone()),
        ("Address".into(), c.address.one_line()),
        ("Tags".into(), c.tags.iter().cloned().collect::<Vec<_>>().join(", ")),
        ("Owner".into(), c.owner.map(|o| ws.member_name(o)).unwrap_or_default()),
        ("Notes".into(), c.notes.clone()),
    ];
    details.extend(custom(req).into_iter().map(|(_, label, v)| (label, v)));
    details.push(("Created".into(), format!("{} by {}", c.created_at.to_rfc3339(), ws.member_name(c.created_by))));
    details.push(("Last updated".into(), format!("{} by {}", c.updated_at.to_rfc3339(), ws.member_name(c.updated_by))));
    if let Some(r) = c.restriction {
        details.push((
            "Restriction".into(),
            format!("Restricted since {} by {}: kept but not processed", r.since.to_rfc3339(), ws.member_name(r.by)),
        ));
    }
    if let Some(at) = c.anonymised_at {
        details.push(("Anonymised".into(), at.to_rfc3339()));
    }
    if c.deleted {
        details.push(("Deleted".into(), "Yes (kept until erased)".into()));
    }
    out.push_str("<section><h2>Contact details</h2><table><tbody>");
    for (label, value) in details.iter().filter(|(_, v)| !v.is_empty()) {
        let _ = write!(out, "<tr><th scope=\"row\">{}</th><td>{}</td></tr>", escape_html(label), escape_html(value));
    }
    out.push_str("</tbody></table></section>");

    out.push_str("<section><h2>Consent</h2>");
    let status_rows: Vec<Vec<String>> = purposes(req)
        .iter()
        .map(|p| {
            let status = c.consent.status(p);
            vec![
                purpose_name(ws, p),
                ws.purposes.get(p).map(|d| d.lawful_basis.label().to_owned()).unwrap_or_default(),
                status.label().to_owned(),
            ]
        })
        .collect();
    table(&mut out, &["Purpose", "Lawful basis", "Status"], &status_rows);
    out.push_str("<h3>Consent history</h3>");
    let event_rows: Vec<Vec<String>> = c
        .consent
        .timeline(None)
        .into_iter()
        .map(|e| {
            vec![
                e.recorded_at.to_rfc3339(),
                purpose_name(ws, &e.purpose),
                e.action.label().to_owned(),
                e.lawful_basis.label().to_owned(),
                e.source.label().to_owned(),
                ws.member_name(e.recorded_by),
                e.note.clone(),
            ]
        })
        .collect();
    if event_rows.is_empty() {
        let _ = write!(out, "<p>{}</p>", escape_html(ConsentStatus::NeverAsked.label()));
    } else {
        table(&mut out, &["When", "Purpose", "Action", "Lawful basis", "Source", "Recorded by", "Note"], &event_rows);
    }
    out.push_str("</section>");

    let _ = write!(out, "<section><h2>Other records about {}</h2>", escape_html(&name));
    if req.related.is_empty() {
        out.push_str("<p>None.</p>");
    } else {
        let rows: Vec<Vec<String>> =
            req.related.iter().map(|r| vec![r.kind.to_string(), r.title.clone(), r.subtitle.clone()]).collect();
        table(&mut out, &["Kind", "Title", "Details"], &rows);
    }
    out.push_str("</section>");

    out.push_str("<section><h2>Change history</h2>");
    let rows: Vec<Vec<String>> = req
        .history
        .iter()
        .map(|e| {
            let fields: Vec<String> = e.fields.iter().map(|f| field_label(f)).collect();
            vec![
                e.at.to_rfc3339(),
                e.member.map(|m| ws.member_name(m)).unwrap_or_else(|| "unknown".into()),
                e.action.label(),
                fields.join(", "),
            ]
        })
        .collect();
    table(&mut out, &["When", "Who", "What", "Fields"], &rows);
    out.push_str("</section></body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit;
    use crate::consent::{ConsentAction, ConsentSource, LawfulBasis, NewConsentEvent};
    use crate::doc;
    use crate::ids::EventId;
    use crate::privacy::references::tests::{about, row_with};
    use crate::record::{Record, RecordKind};
    use automerge::AutoCommit;

    fn sam() -> MemberId {
        MemberId::from_bytes([1; 16])
    }

    fn ws() -> Workspace {
        Workspace::new(RecordId::from_bytes([9; 16]), "Acme", sam(), "Sam", Timestamp::from_millis(0))
    }

    fn ada(name: &str) -> Contact {
        let mut c = Contact::new(RecordId::from_bytes([1; 16]), Timestamp::from_millis(1_700_000_000_000), sam());
        c.given_name = name.into();
        c.family_name = "Lovelace".into();
        c.emails.push(Labeled {
            id: EntryId::from_bytes([1; 16]),
            label: "work".into(),
            value: "ada@example.org".into(),
        });
        c.notes = "Tea & engines".into();
        c.consent.record(NewConsentEvent {
            id: EventId::from_bytes([1; 16]),
            purpose: PurposeId::MARKETING_EMAIL.parse().unwrap(),
            action: ConsentAction::Granted,
            recorded_at: Timestamp::from_millis(1_700_000_100_000),
            lawful_basis: LawfulBasis::Consent,
            source: ConsentSource::Form,
            recorded_by: sam(),
            note: "Signed up at the fair".into(),
        });
        c
    }

    fn history_of(c: &Contact) -> Vec<AuditEntry> {
        let mut doc = AutoCommit::new().with_actor(crate::repo::session_actor(sam(), [1; 8]));
        doc::init_root(&mut doc, "contact", 1).unwrap();
        c.write_doc(&mut doc).unwrap();
        audit::commit(&mut doc, c.created_at);
        audit::history(&mut doc)
    }

    #[test]
    fn the_json_export_holds_fields_consent_with_labels_related_records_and_history() {
        let c = ada("Ada");
        let ws = ws();
        let history = history_of(&c);
        let rows = [row_with(10, RecordKind::Activity, "Call with Ada", &[about(1)]), c.row()];
        let related = related_rows(c.id, &rows);
        let req = AccessRequest {
            contact: &c,
            history: &history,
            related: &related,
            workspace: &ws,
            generated_at: Timestamp::from_millis(1_700_000_200_000),
            generated_by: sam(),
        };
        let v = access_export(&req);
        assert_eq!(v["subject"]["given_name"], "Ada");
        assert_eq!(v["subject"]["emails"][0]["value"], "ada@example.org");
        assert_eq!(v["subject"]["owner"]["name"], "Sam");
        let email =
            v["consent"]["status"].as_array().unwrap().iter().find(|s| s["purpose"] == "marketing_email").unwrap();
        assert_eq!(
            (email["purpose_name"].as_str(), email["status_label"].as_str()),
            (Some("Marketing email"), Some("Granted"))
        );
        assert_eq!(v["consent"]["status"].as_array().unwrap().len(), 4, "every workspace purpose is listed");
        let event = &v["consent"]["events"][0];
        assert_eq!(
            (event["source_label"].as_str(), event["note"].as_str()),
            (Some("Web form"), Some("Signed up at the fair"))
        );
        assert_eq!(event["recorded_by"]["name"], "Sam");
        assert_eq!(v["related_records"][0]["title"], "Call with Ada");
        assert!(v["related_records"][0]["columns"].get(REFS_COLUMN).is_none());
        assert_eq!(v["history"][0]["member"]["name"], "Sam");
        assert_eq!(v["history"][0]["action"], "created");
        assert_eq!(file_name(&req, "json"), format!("access-request-{}-2023-11-14.json", c.id));
    }

    #[test]
    fn the_printable_page_escapes_every_text() {
        let c = ada("<script>alert('x')</script>");
        let ws = ws();
        let history = history_of(&c);
        let req = AccessRequest {
            contact: &c,
            history: &history,
            related: &[],
            workspace: &ws,
            generated_at: Timestamp::from_millis(1_700_000_200_000),
            generated_by: sam(),
        };
        let html = access_report_html(&req);
        assert!(!html.contains("<script>"), "raw markup from data must not reach the page");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Lovelace"));
        assert!(html.contains("Tea &amp; engines"));
        assert!(html.contains("Signed up at the fair"));
        assert!(html.contains("Marketing email"));
        assert!(html.starts_with("<!DOCTYPE html>"));
    }
}
