//! Deals: the pipeline board (the default view of `/deals`) and, with
//! `?view=list`, the deal list (`super::deal_list`). Both read rows only;
//! moving a deal opens its document, moves it with `Deal::move_to` and saves.
//!
//! A card moves by dragging it to another column (HTML5 drag and drop), by
//! Alt+Left/Right while the card has focus, or with its "Move" button,
//! which offers every stage. Moving to a Lost stage asks why first. Every
//! move is announced in a live region.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;
use rapport_core::ids::RecordId;
use rapport_core::record::RecordKind;
use rapport_core::sales::deal::Deal;
use rapport_core::sales::forecast::{board, Column, DealFacts};
use rapport_core::sales::money;
use rapport_core::sales::pipeline::{Outcome, PipelineId, StageId};
use rapport_core::workspace::Workspace;
use wasm_bindgen::JsCast;

use super::contacts::initials;
use super::widgets::{Dialog, FieldError};
use crate::browser;
use crate::state::{use_app, AppState};

/// Every live deal, from the rows.
pub fn deal_facts(app: AppState) -> Memo<Vec<DealFacts>> {
    Memo::new(move |_| app.index.with(|i| DealFacts::all(i.rows())))
}

/// The name of a live record of `kind`, or `None` when it is missing or
/// deleted (links to it must not show).
pub fn live_title(app: AppState, id: RecordId, kind: RecordKind) -> Option<String> {
    app.index.with(|i| i.get(id).filter(|r| r.kind == kind && !r.deleted).map(|r| r.title.clone()))
}

/// "Lead", or "Sales › Lead" when `with_pipeline`; words for a stage this
/// device does not know.
pub fn stage_label(ws: &Workspace, pipeline: &str, stage: &str, with_pipeline: bool) -> String {
    let name = ws.stage(pipeline, stage).map(|s| s.name.clone()).unwrap_or_else(|| "Unknown stage".into());
    match (with_pipeline, ws.pipelines.get(pipeline)) {
        (true, Some(p)) => format!("{} › {name}", p.name),
        _ => name,
    }
}

/// "12 Mar 2026".
pub fn format_date(d: chrono::NaiveDate) -> String {
    d.format("%-d %b %Y").to_string()
}

/// Moves a deal: opens its document, moves it, saves it. Returns the
/// stage's name, or what went wrong in words.
pub async fn move_deal(
    app: AppState,
    id: RecordId,
    pipeline: PipelineId,
    stage: StageId,
    reason: String,
) -> Result<String, String> {
    let engine = app.engine();
    let mut deal = engine.open::<Deal>(id).await.map_err(|e| format!("The deal could not be opened: {e}"))?;
    let ws = app.workspace.get_untracked();
    deal.move_to(
        &ws,
        &pipeline,
        &stage,
        &reason,
        browser::new_entry_id(),
        browser::now(),
        browser::today(),
        engine.member,
    )
    .map_err(|e| e.to_string())?;
    app.persist(deal, false).await?;
    Ok(stage_label(&ws, &pipeline, &stage, false))
}

/// `/deals`: the board, or the list with `?view=list`.
#[component]
pub fn DealsPage() -> impl IntoView {
    let query = use_query_map();
    let list = Memo::new(move |_| query.with(|q| q.get("view").as_deref() == Some("list")));
    let new_href = browser::href("/deals/new");
    view! {
        <section class="page deals-page">
            <div class="page-head">
                <h1>"Deals"</h1>
                <nav class="view-switch" aria-label="Deal views">
                    <a href=browser::href("/deals") aria-current=move || (!list.get()).then_some("page")>"Board"</a>
                    <a href=browser::href("/deals?view=list") aria-current=move || list.get().then_some("page")>"List"</a>
                </nav>
                <a class="btn primary" href=new_href>"New deal"</a>
            </div>
            {move || if list.get() {
                view! { <super::deal_list::DealList/> }.into_any()
            } else {
                view! { <Board/> }.into_any()
            }}
        </section>
    }
}

/// The pipeline shown: `?pipeline=`, else the first one.
pub fn chosen_pipeline(app: AppState) -> Memo<PipelineId> {
    let query = use_query_map();
    Memo::new(move |_| {
        let wanted = query.with(|q| q.get("pipeline")).unwrap_or_default();
        app.workspace.with(|ws| {
            if ws.pipelines.get(&wanted).is_some_and(|p| !p.archived) {
                wanted
            } else {
                ws.ordered_pipelines(false).first().map(|(id, _)| (*id).clone()).unwrap_or_default()
            }
        })
    })
}

/// A setter for one query parameter of the page at `path` (an empty value
/// removes it), replacing the history entry.
pub fn use_query_setter(path: &'static str) -> impl Fn(&'static str, String) + Clone + 'static {
    let query = use_query_map();
    let navigate = use_navigate();
    move |key, value| {
        let mut q = query.get_untracked();
        if value.is_empty() {
            q.remove(key);
        } else {
            q.replace(key, value);
        }
        navigate(
            &format!("{path}{}", q.to_query_string()),
            NavigateOptions { replace: true, scroll: false, ..Default::default() },
        );
    }
}

/// A move waiting for the user: to a Lost stage (asks why), or picking the
/// stage from the Move menu.
#[derive(Clone, PartialEq)]
struct Pending {
    deal: DealFacts,
    stage: StageId,
}

#[component]
fn Board() -> impl IntoView {
    let app = use_app();
    let set_param = StoredValue::new_local(use_query_setter("/deals"));
    let deals = deal_facts(app);
    let pipeline = chosen_pipeline(app);
    let columns: Memo<Vec<Column>> =
        Memo::new(move |_| app.workspace.with(|ws| deals.with(|d| board(d, ws, &pipeline.get()))));
    let dragging = RwSignal::new(None::<RecordId>);
    let over = RwSignal::new(None::<StageId>);
    let announce = RwSignal::new(String::new());
    let lost = RwSignal::new(None::<Pending>);
    let lost_open = RwSignal::new(false);
    let menu = RwSignal::new(None::<DealFacts>);
    let menu_open = RwSignal::new(false);
    let busy = RwSignal::new(false);
    // The card to give focus back to once it shows in its new column, so a
    // keyboard user can press Alt+→ again without finding it first.
    let refocus = RwSignal::new(None::<(RecordId, StageId)>);

    Effect::new(move |_| {
        if !lost_open.get() {
            lost.set(None);
        }
    });
    Effect::new(move |_| {
        if !menu_open.get() {
            menu.set(None);
        }
    });

    let run_move = move |deal: DealFacts, stage: StageId, reason: String| {
        let pipeline_id = deal.pipeline.clone();
        busy.set(true);
        spawn_local(async move {
            let title = deal.title.clone();
            let stage_after = stage.clone();
            match move_deal(app, deal.id, pipeline_id, stage, reason).await {
                Ok(name) => {
                    let position = columns.with_untracked(|cs| {
                        cs.iter().position(|c| c.name == name).map(|i| format!(" (column {} of {})", i + 1, cs.len()))
                    });
                    announce.set(format!("Moved {title} to {name}{}.", position.unwrap_or_default()));
                    refocus.set(Some((deal.id, stage_after)));
                }
                Err(e) => {
                    announce.set(format!("{title} was not moved: {e}"));
                    app.notify(format!("{title} was not moved: {e}"), None);
                }
            }
            busy.set(false);
        });
    };

    // Every way of moving ends here: a Lost stage asks why first.
    let request_move = move |deal: DealFacts, stage: StageId| {
        if deal.stage == stage {
            return;
        }
        let outcome = app.workspace.with_untracked(|ws| ws.stage(&deal.pipeline, &stage).map(|s| s.outcome));
        if outcome == Some(Outcome::Lost) {
            lost.set(Some(Pending { deal, stage }));
            lost_open.set(true);
        } else {
            run_move(deal, stage, String::new());
        }
    };

    // The stages a card can move to with the keyboard, in board order.
    let targets = move || {
        columns.with_untracked(|cs| {
            cs.iter()
                .filter(|c| !c.archived)
                .filter_map(|c| c.stage.clone().map(|s| (s, c.name.clone())))
                .collect::<Vec<_>>()
        })
    };

    let on_key = move |ev: leptos::ev::KeyboardEvent, deal: DealFacts| {
        if !ev.alt_key() || busy.get_untracked() {
            return;
        }
        let step: isize = match ev.key().as_str() {
            "ArrowRight" => 1,
            "ArrowLeft" => -1,
            _ => return,
        };
        ev.prevent_default();
        let stages = targets();
        let Some(here) = stages.iter().position(|(s, _)| *s == deal.stage) else {
            announce
                .set(format!("{} is in a stage that cannot be moved from with the keyboard; use Move.", deal.title));
            return;
        };
        let to = here as isize + step;
        if to < 0 || to as usize >= stages.len() {
            announce.set(format!(
                "{} is already in the {} column.",
                deal.title,
                if step < 0 { "first" } else { "last" }
            ));
            return;
        }
        request_move(deal, stages[to as usize].0.clone());
    };

    let drop_on = move |stage: StageId| {
        over.set(None);
        let Some(id) = dragging.get_untracked() else { return };
        dragging.set(None);
        if let Some(deal) = deals.with_untracked(|ds| ds.iter().find(|d| d.id == id).cloned()) {
            request_move(deal, stage);
        }
    };

    let pipelines = move || {
        app.workspace.with(|ws| {
            ws.ordered_pipelines(false).into_iter().map(|(id, p)| (id.clone(), p.name.clone())).collect::<Vec<_>>()
        })
    };
    let currency = move || app.workspace.with(|ws| ws.currency.clone());
    let today = browser::today();

    view! {
        <div class="toolbar board-toolbar">
            {move || {
                let ps = pipelines();
                (ps.len() > 1).then(|| view! {
                    <label class="sort">
                        <span>"Pipeline"</span>
                        <select aria-label="Pipeline" on:change=move |ev| set_param.with_value(|f| f("pipeline", event_target_value(&ev)))>
                            {ps.into_iter().map(|(id, name)| {
                                let selected = pipeline.get() == id;
                                view! { <option value=id selected=selected>{name}</option> }
                            }).collect_view()}
                        </select>
                    </label>
                })
            }}
            <p class="muted small board-hint">
                "Drag a card to another stage, or focus it and press Alt+→ / Alt+←. The Move button lists every stage."
            </p>
        </div>
        <p class="visually-hidden" role="status" aria-live="polite" data-testid="board-announcer">{move || announce.get()}</p>
        {move || {
            if deals.with(Vec::is_empty) {
                return view! {
                    <div class="empty" data-testid="empty-deals">
                        <h2>"No deals yet"</h2>
                        <p>"Add a deal to see it on the board. Cards move from stage to stage as the deal progresses, and the forecast adds them up."</p>
                        <a class="btn primary" href=browser::href("/deals/new")>"Add your first deal"</a>
                    </div>
                }.into_any();
            }
            let cur = currency();
            view! {
                <div class="board" data-testid="board">
                    {columns.get().into_iter().map(|col| {
                        let stage_key = col.stage.clone();
                        let droppable = col.stage.is_some() && !col.archived;
                        let heading_id = format!("col-{}", col.stage.clone().unwrap_or_else(|| "other".into()));
                        let labelled_by = heading_id.clone();
                        let count = col.deals.len();
                        let over_key = stage_key.clone();
                        let is_over = move || over_key.is_some() && over.get() == over_key;
                        let (enter_key, drop_key) = (stage_key.clone(), stage_key.clone());
                        view! {
                            <section class="board-col" class:drop-target=is_over class:archived=col.archived
                                aria-labelledby=labelled_by data-testid="board-column" data-stage=stage_key.clone().unwrap_or_default()
                                on:dragover=move |ev: leptos::ev::DragEvent| {
                                    if droppable && dragging.get_untracked().is_some() {
                                        ev.prevent_default();
                                        set_drop_effect(&ev);
                                        if over.get_untracked() != enter_key { over.set(enter_key.clone()); }
                                    }
                                }
                                on:dragleave=move |ev: leptos::ev::DragEvent| {
                                    // Only when the pointer leaves the column, not one of its cards.
                                    let inside = ev.related_target()
                                        .and_then(|t| t.dyn_into::<web_sys::Node>().ok())
                                        .zip(ev.current_target().and_then(|t| t.dyn_into::<web_sys::Node>().ok()))
                                        .is_some_and(|(to, col)| col.contains(Some(&to)));
                                    if !inside { over.set(None); }
                                }
                                on:drop=move |ev: leptos::ev::DragEvent| {
                                    if let (true, Some(stage)) = (droppable, drop_key.clone()) {
                                        ev.prevent_default();
                                        drop_on(stage);
                                    }
                                }
                            >
                                <header class="col-head" class:won=col.outcome == Outcome::Won class:lost=col.outcome == Outcome::Lost>
                                    <h2 id=heading_id>{col.name.clone()}{col.archived.then_some(" (archived)")}</h2>
                                    <p class="col-sum">
                                        <span data-testid="column-count">{format!("{count} {}", if count == 1 { "deal" } else { "deals" })}</span>
                                        " · "
                                        <span data-testid="column-total" title="Total value">{col.value.short(&cur)}</span>
                                    </p>
                                    <p class="col-weighted muted small">
                                        <span data-testid="column-weighted">{col.weighted.short(&cur)}</span>" weighted"
                                    </p>
                                </header>
                                {if col.deals.is_empty() {
                                    view! { <p class="col-empty muted small">{if droppable { "No deals here. Drop a card to move it to this stage." } else { "No deals." }}</p> }.into_any()
                                } else {
                                    view! {
                                        <ol class="col-deals">
                                            {col.deals.into_iter().map(|d| view! {
                                                <DealCard deal=d today=today dragging=dragging over=over refocus=refocus
                                                    on_key=move |ev, d| on_key(ev, d)
                                                    on_menu=move |d| { menu.set(Some(d)); menu_open.set(true); }/>
                                            }).collect_view()}
                                        </ol>
                                    }.into_any()
                                }}
                            </section>
                        }
                    }).collect_view()}
                </div>
            }.into_any()
        }}
        <Dialog open=menu_open title=Signal::derive(move || menu.with(|m| m.as_ref().map(|d| format!("Move {}", d.title)).unwrap_or_default())) testid="move-dialog">
            {move || menu.get().map(|deal| {
                let stages = targets();
                view! {
                    <p class="muted">"Choose the stage to move this deal to."</p>
                    <ul class="stage-choices">
                        {stages.into_iter().map(|(stage, name)| {
                            let current = stage == deal.stage;
                            let deal = deal.clone();
                            view! {
                                <li>
                                    <button type="button" class="btn" class:primary=current disabled=current
                                        aria-current=current.then_some("true")
                                        on:click=move |_| {
                                            menu_open.set(false);
                                            request_move(deal.clone(), stage.clone());
                                        }>
                                        {name}{current.then_some(" (current)")}
                                    </button>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }
            })}
        </Dialog>
        <LostDialog pending=lost open=lost_open on_confirm=move |p: Pending, reason: String| run_move(p.deal, p.stage, reason)/>
    }
}

fn set_drop_effect(ev: &web_sys::DragEvent) {
    if let Ok(dt) = js_sys::Reflect::get(ev.as_ref(), &"dataTransfer".into()) {
        if !dt.is_null() && !dt.is_undefined() {
            let _ = js_sys::Reflect::set(&dt, &"dropEffect".into(), &"move".into());
        }
    }
}

fn start_drag(ev: &web_sys::DragEvent, id: &str) {
    // `DataTransfer` through reflection: the web-sys feature is not enabled.
    let Ok(dt) = js_sys::Reflect::get(ev.as_ref(), &"dataTransfer".into()) else { return };
    if dt.is_null() || dt.is_undefined() {
        return;
    }
    let _ = js_sys::Reflect::set(&dt, &"effectAllowed".into(), &"move".into());
    if let Ok(f) = js_sys::Reflect::get(&dt, &"setData".into()) {
        if let Ok(f) = f.dyn_into::<js_sys::Function>() {
            let _ = f.call2(&dt, &"application/x-rapport-deal".into(), &id.into());
        }
    }
}

#[component]
fn DealCard(
    deal: DealFacts,
    today: chrono::NaiveDate,
    dragging: RwSignal<Option<RecordId>>,
    over: RwSignal<Option<StageId>>,
    refocus: RwSignal<Option<(RecordId, StageId)>>,
    on_key: impl Fn(leptos::ev::KeyboardEvent, DealFacts) + 'static,
    on_menu: impl Fn(DealFacts) + 'static,
) -> impl IntoView {
    let app = use_app();
    let id = deal.id;
    let company = deal.company.and_then(|c| live_title(app, c, RecordKind::Company));
    let owner = deal.owner.map(|o| app.workspace.with_untracked(|w| w.member_name(o)));
    let late = deal.status == Outcome::Open && deal.close.is_some_and(|c| c < today);
    let close =
        deal.close
            .map(|c| if late { format!("Was due {}", format_date(c)) } else { format!("Closes {}", format_date(c)) });
    let value = money::format_short(deal.value, &deal.currency);
    let full_value = money::format(deal.value, &deal.currency);
    let (for_key, for_menu) = (deal.clone(), deal.clone());
    let title = deal.title.clone();
    let link = NodeRef::<leptos::html::A>::new();
    let here = (id, deal.stage.clone());
    // Runs when the card mounts and when a move asks for focus: whichever
    // comes last, the card in the new column takes it (never the old one).
    Effect::new(move |_| {
        if let Some(el) = link.get() {
            if refocus.with(|r| r.as_ref() == Some(&here)) {
                refocus.set(None);
                let _ = el.focus();
            }
        }
    });
    view! {
        <li class="deal-card" class:late=late class:dragging=move || dragging.get() == Some(id)
            draggable="true" data-testid="deal-card" data-deal=id.to_string()
            on:dragstart=move |ev: leptos::ev::DragEvent| { start_drag(&ev, &id.to_string()); dragging.set(Some(id)); }
            on:dragend=move |_| { dragging.set(None); over.set(None); }
            on:keydown=move |ev| on_key(ev, for_key.clone())
        >
            <a class="deal-title" href=browser::href(&format!("/deals/{id}")) draggable="false" data-deal-link=id.to_string() node_ref=link
                aria-keyshortcuts="Alt+ArrowLeft Alt+ArrowRight">{title.clone()}</a>
            {company.map(|c| view! { <p class="deal-company">{c}</p> })}
            <div class="deal-foot">
                <span class="deal-value" title=full_value>{value}</span>
                {close.map(|c| view! { <span class="deal-close" class:late=late>{c}</span> })}
                {owner.map(|o| view! {
                    <span class="avatar small" title=format!("Owner: {o}")>
                        <span aria-hidden="true">{initials(&o)}</span>
                        <span class="visually-hidden">{format!("Owner: {o}")}</span>
                    </span>
                })}
                <button type="button" class="btn small ghost move-btn" aria-haspopup="dialog"
                    aria-label=format!("Move {title}") on:click=move |_| on_menu(for_menu.clone())>"Move"</button>
            </div>
        </li>
    }
}

/// Asks why a deal was lost before moving it to a Lost stage.
#[component]
fn LostDialog(
    pending: RwSignal<Option<Pending>>,
    open: RwSignal<bool>,
    on_confirm: impl Fn(Pending, String) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let reason = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if open.get() {
            reason.set(String::new());
            error.set(None);
        }
    });
    let title = Signal::derive(move || {
        pending.with(|p| p.as_ref().map(|p| format!("Why was {} lost?", p.deal.title)).unwrap_or_default())
    });
    view! {
        <Dialog open=open title=title testid="lost-dialog">
            <form class="form" on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                let r = reason.get_untracked();
                if r.trim().is_empty() {
                    error.set(Some("Say why the deal was lost; it helps the next one.".into()));
                    request_animation_frame(browser::focus_first_invalid);
                    return;
                }
                if let Some(p) = pending.get_untracked() {
                    open.set(false);
                    on_confirm(p, r);
                }
            }>
                <div class="field" class:invalid=move || error.get().is_some()>
                    <label for="lost-reason">"Reason"</label>
                    <textarea id="lost-reason" rows="3" autofocus=true
                        prop:value=move || reason.get()
                        on:input=move |ev| reason.set(event_target_value(&ev))
                        aria-invalid=move || error.get().is_some().then_some("true")
                        aria-describedby=move || error.get().is_some().then_some("lost-reason-error")></textarea>
                    <FieldError id="lost-reason-error".into() error=Signal::derive(move || error.get())/>
                </div>
                <div class="form-actions">
                    <button type="submit" class="btn danger">"Mark as lost"</button>
                    <button type="button" class="btn" on:click=move |_| open.set(false)>"Cancel"</button>
                </div>
            </form>
        </Dialog>
    }
}
