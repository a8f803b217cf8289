//! Settings → Pipelines (`/settings/pipelines`): the workspace currency and
//! monthly target, and each pipeline's stages: rename, default probability
//! and outcome, add, reorder with Up/Down buttons (`Pipeline::move_stage`),
//! archive and restore. Pipelines can be added, renamed and archived.
//! Every change is saved at once through `AppState::workspace_saved`.

use leptos::prelude::*;
use rapport_core::sales::forecast::DealFacts;
use rapport_core::sales::money;
use rapport_core::sales::pipeline::{default_pipelines, Outcome, Pipeline, PipelineError, PipelineId, StageId};
use rapport_core::workspace::Workspace;
use wasm_bindgen::JsCast;

use super::widgets::{FieldError, TextField};
use crate::browser;
use crate::state::use_app;

/// The Settings page's entry to this page.
#[component]
pub fn SalesSettingsLink() -> impl IntoView {
    let app = use_app();
    let summary = move || {
        app.workspace.with(|w| {
            let n = w.ordered_pipelines(false).len();
            let target = w.monthly_target.map(|t| format!(", monthly target {}", money::format(t, &w.currency)));
            format!(
                "{n} {} · amounts in {}{}",
                if n == 1 { "pipeline" } else { "pipelines" },
                w.currency,
                target.unwrap_or_default()
            )
        })
    };
    view! {
        <div class="card" id="sales">
            <h2>"Sales"</h2>
            <p class="muted" data-testid="sales-summary">{summary}</p>
            <a class="btn" href=browser::href("/settings/pipelines")>"Pipelines, stages, currency and target"</a>
        </div>
    }
}

fn save(f: impl FnOnce(&mut Workspace) -> Result<(), String>) -> Result<(), String> {
    let app = use_app();
    let mut ws = app.workspace.get_untracked();
    f(&mut ws)?;
    ws.updated_at = browser::now();
    app.workspace_saved(ws);
    Ok(())
}

fn focus_id(id: String) {
    request_animation_frame(move || {
        if let Some(el) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id(&id))
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
        {
            let _ = el.focus();
        }
    });
}

#[component]
pub fn PipelineSettings() -> impl IntoView {
    let app = use_app();
    let active = Memo::new(move |_| {
        app.workspace.with(|w| w.ordered_pipelines(false).into_iter().map(|(id, _)| id.clone()).collect::<Vec<_>>())
    });
    let archived = Memo::new(move |_| {
        app.workspace.with(|w| {
            w.ordered_pipelines(true)
                .into_iter()
                .filter(|(_, p)| p.archived)
                .map(|(id, p)| (id.clone(), p.name.clone()))
                .collect::<Vec<_>>()
        })
    });
    view! {
        <section class="page settings-page pipelines-page">
            <div class="page-head">
                <h1>"Pipelines and stages"</h1>
                <a class="btn" href=browser::href("/settings")>"Back to settings"</a>
            </div>
            <CurrencySettings/>
            <For each=move || active.get() key=|id| id.clone() children=move |pid| view! { <PipelineCard pid=pid/> }/>
            <AddPipeline/>
            {move || {
                let list = archived.get();
                (!list.is_empty()).then(|| view! {
                    <div class="card">
                        <h2>"Archived pipelines"</h2>
                        <p class="muted">"Their deals keep their stage; restore a pipeline to show it on the board again."</p>
                        <ul class="plain-list" data-testid="archived-pipelines">
                            {list.into_iter().map(|(pid, name)| view! {
                                <li class="row-between">
                                    <span>{name.clone()}</span>
                                    <button type="button" class="btn small" aria-label=format!("Restore pipeline {name}")
                                        on:click=move |_| {
                                            let pid = pid.clone();
                                            let _ = save(move |w| { if let Some(p) = w.pipelines.get_mut(&pid) { p.archived = false; } Ok(()) });
                                        }>"Restore"</button>
                                </li>
                            }).collect_view()}
                        </ul>
                    </div>
                })
            }}
        </section>
    }
}

#[component]
fn CurrencySettings() -> impl IntoView {
    let app = use_app();
    let ws = app.workspace.get_untracked();
    let currency = RwSignal::new(ws.currency.clone());
    let target = RwSignal::new(ws.monthly_target.map(|t| money::format_plain(t, &ws.currency)).unwrap_or_default());
    let errors = RwSignal::new((None::<String>, None::<String>));
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let code = money::currency(&currency.get_untracked());
        let amount = match &code {
            Ok(c) if !target.get_untracked().trim().is_empty() => {
                money::parse_amount(&target.get_untracked(), c).map(Some)
            }
            _ => Ok(None),
        };
        match (code, amount) {
            (Ok(c), Ok(t)) => {
                errors.set((None, None));
                let _ = save(|w| {
                    w.currency = c.clone();
                    w.monthly_target = t.filter(|t| *t > 0);
                    Ok(())
                });
                currency.set(c);
                app.notify("Currency and target saved", None);
            }
            (c, t) => {
                errors.set((c.err().map(|e| e.to_string()), t.err().map(|e| e.to_string())));
                request_animation_frame(browser::focus_first_invalid);
            }
        }
    };
    view! {
        <form class="card form" on:submit=submit aria-labelledby="currency-h" data-testid="currency-settings">
            <h2 id="currency-h">"Currency and target"</h2>
            <div class="grid2">
                <TextField id="ws-currency" label="Workspace currency" value=currency error=Signal::derive(move || errors.get().0)
                    hint="New deals start in this currency. Amounts in other currencies are shown apart, never converted."/>
                <TextField id="ws-target" label="Monthly sales target" value=target error=Signal::derive(move || errors.get().1)
                    hint="In the workspace currency; the forecast shows it as a line. Leave empty for none."/>
            </div>
            <div class="form-actions"><button type="submit" class="btn primary">"Save currency and target"</button></div>
        </form>
    }
}

#[component]
fn AddPipeline() -> impl IntoView {
    let app = use_app();
    let name = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let n = name.get_untracked().trim().to_owned();
        if n.is_empty() {
            error.set(Some("Enter a name for the pipeline".into()));
            request_animation_frame(browser::focus_first_invalid);
            return;
        }
        error.set(None);
        let id: PipelineId = browser::new_record_id().to_string();
        let _ = save(|w| {
            let position = w.pipelines.values().map(|p| p.position).fold(0.0, f64::max) + 1.0;
            // A new pipeline starts with the usual stages, ready to rename.
            let stages = default_pipelines().into_values().next().map(|p| p.stages).unwrap_or_default();
            w.pipelines.insert(id.clone(), Pipeline { name: n.clone(), position, archived: false, stages });
            Ok(())
        });
        name.set(String::new());
        app.notify(format!("Added pipeline {n}"), None);
        focus_id(format!("pipeline-name-{id}"));
    };
    view! {
        <form class="card form inline-form" on:submit=submit aria-labelledby="add-pipeline-h">
            <h2 id="add-pipeline-h" class="span-all">"Add a pipeline"</h2>
            <TextField id="new-pipeline-name" label="New pipeline name" value=name error=error
                hint="It starts with the usual stages; rename or change them below."/>
            <button type="submit" class="btn">"Add pipeline"</button>
        </form>
    }
}

#[component]
fn PipelineCard(pid: PipelineId) -> impl IntoView {
    let app = use_app();
    let pid = StoredValue::new(pid);
    let pipeline = Memo::new(move |_| app.workspace.with(|w| pid.with_value(|p| w.pipelines.get(p).cloned())));
    let name_of = move || pipeline.with(|p| p.as_ref().map(|p| p.name.clone()).unwrap_or_default());
    let name = RwSignal::new(name_of());
    Effect::new(move |_| name.set(name_of()));
    let name_error = RwSignal::new(None::<String>);
    let archive_error = RwSignal::new(None::<String>);
    let order = Memo::new(move |_| {
        pipeline
            .with(|p| {
                p.as_ref().map(|p| p.ordered_stages(false).into_iter().map(|(id, _)| id.clone()).collect::<Vec<_>>())
            })
            .unwrap_or_default()
    });
    let archived_stages = Memo::new(move |_| {
        pipeline.with(|p| {
            p.as_ref()
                .map(|p| {
                    p.ordered_stages(true)
                        .into_iter()
                        .filter(|(_, s)| s.archived)
                        .map(|(id, s)| (id.clone(), s.name.clone()))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    });
    // Deals per stage of this pipeline, from rows.
    let counts = Memo::new(move |_| {
        let p = pid.get_value();
        app.index.with(|i| {
            let mut out = std::collections::BTreeMap::<StageId, usize>::new();
            for d in DealFacts::all(i.rows()).into_iter().filter(|d| d.pipeline == p) {
                *out.entry(d.stage).or_default() += 1;
            }
            out
        })
    });

    let rename = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let n = name.get_untracked().trim().to_owned();
        if n.is_empty() {
            name_error.set(Some("Enter a name".into()));
            request_animation_frame(browser::focus_first_invalid);
            return;
        }
        name_error.set(None);
        let p = pid.get_value();
        let _ = save(|w| {
            if let Some(pl) = w.pipelines.get_mut(&p) {
                pl.name = n.clone();
            }
            Ok(())
        });
        app.notify(format!("Renamed the pipeline to {n}"), None);
    };
    let archive = move |_| {
        let p = pid.get_value();
        let result = save(|w| {
            if w.ordered_pipelines(false).len() <= 1 {
                return Err("Keep at least one pipeline: add another before archiving this one.".into());
            }
            if let Some(pl) = w.pipelines.get_mut(&p) {
                pl.archived = true;
            }
            Ok(())
        });
        match result {
            Ok(()) => app.notify(format!("Archived pipeline {}", name_of()), None),
            Err(e) => archive_error.set(Some(e)),
        }
    };
    let heading_id = pid.with_value(|p| format!("pipeline-h-{p}"));
    let labelled_by = heading_id.clone();
    let name_id = pid.with_value(|p| format!("pipeline-name-{p}"));

    view! {
        <section class="card pipeline-card" aria-labelledby=labelled_by data-testid="pipeline-card">
            <div class="row-between">
                <h2 id=heading_id>{move || format!("Pipeline: {}", name_of())}</h2>
                <button type="button" class="btn small danger" on:click=archive aria-label=move || format!("Archive pipeline {}", name_of())>"Archive pipeline"</button>
            </div>
            {move || archive_error.get().map(|e| view! { <p class="field-error" role="alert">{e}</p> })}
            <form class="form inline-form rename-form" on:submit=rename>
                <Field id=name_id label="Pipeline name" value=name error=name_error/>
                <button type="submit" class="btn">"Rename"</button>
            </form>
            <h3>"Stages"</h3>
            <p class="muted small">"Changes save as you make them. Won and Lost stages close a deal; a Lost stage asks why."</p>
            <div class="table-wrap">
                <table class="stage-table" data-testid="stage-table">
                    <thead>
                        <tr>
                            <th scope="col">"Order"</th>
                            <th scope="col">"Stage name"</th>
                            <th scope="col">"Default probability (%)"</th>
                            <th scope="col">"Outcome"</th>
                            <th scope="col">"Deals"</th>
                            <th scope="col"><span class="visually-hidden">"Archive"</span></th>
                        </tr>
                    </thead>
                    <tbody>
                        <For each=move || order.get() key=|sid| sid.clone() children=move |sid| {
                            view! { <StageRow pid=pid.get_value() sid=sid order=order counts=counts/> }
                        }/>
                    </tbody>
                </table>
            </div>
            <AddStage pid=pid.get_value()/>
            {move || {
                let list = archived_stages.get();
                (!list.is_empty()).then(|| view! {
                    <h3>"Archived stages"</h3>
                    <ul class="plain-list compact" data-testid="archived-stages">
                        {list.into_iter().map(|(sid, sname)| {
                            let counted = sid.clone();
                            view! {
                            <li class="row-between">
                                <span>{sname.clone()}{move || {
                                    let n = counts.with(|c| c.get(&counted).copied().unwrap_or(0));
                                    (n > 0).then(|| format!(" — {n} {} still in it", if n == 1 { "deal" } else { "deals" }))
                                }}</span>
                                <button type="button" class="btn small" aria-label=format!("Restore stage {sname}")
                                    on:click={
                                        let sid = sid.clone();
                                        move |_| {
                                            let (p, s) = (pid.get_value(), sid.clone());
                                            let _ = save(move |w| {
                                                if let Some(st) = w.pipelines.get_mut(&p).and_then(|pl| pl.stages.get_mut(&s)) { st.archived = false; }
                                                Ok(())
                                            });
                                        }
                                    }>"Restore"</button>
                            </li>
                        }}).collect_view()}
                    </ul>
                })
            }}
        </section>
    }
}

/// One change to a stage of a pipeline; an error is shown in words.
type StageEdit = Box<dyn FnOnce(&mut Pipeline, &str) -> Result<(), String>>;

#[component]
fn StageRow(
    pid: PipelineId,
    sid: StageId,
    order: Memo<Vec<StageId>>,
    counts: Memo<std::collections::BTreeMap<StageId, usize>>,
) -> impl IntoView {
    let app = use_app();
    let (pid, sid) = (StoredValue::new(pid), StoredValue::new(sid));
    let stage =
        Memo::new(move |_| app.workspace.with(|w| pid.with_value(|p| sid.with_value(|s| w.stage(p, s).cloned()))));
    let index = Memo::new(move |_| sid.with_value(|s| order.with(|o| o.iter().position(|x| x == s).unwrap_or(0))));
    let count = move || order.with(Vec::len);
    let name_now = move || stage.with(|s| s.as_ref().map(|s| s.name.clone()).unwrap_or_default());
    let name = RwSignal::new(name_now());
    let probability =
        RwSignal::new(stage.with_untracked(|s| s.as_ref().map(|s| s.probability.to_string()).unwrap_or_default()));
    Effect::new(move |_| {
        if let Some(s) = stage.get() {
            name.set(s.name.clone());
            probability.set(s.probability.to_string());
        }
    });
    let error = RwSignal::new(None::<(String, &'static str)>);

    let edit = move |field: &'static str, f: StageEdit| {
        let (p, s) = (pid.get_value(), sid.get_value());
        match save(move |w| {
            let pl = w.pipelines.get_mut(&p).ok_or_else(|| PipelineError::UnknownStage.to_string())?;
            f(pl, &s)
        }) {
            Ok(()) => error.set(None),
            Err(e) => {
                error.set(Some((e, field)));
                if field != "archive" {
                    request_animation_frame(browser::focus_first_invalid);
                }
            }
        }
    };
    let move_by = move |step: isize, from: &'static str| {
        let to = index.get_untracked() as isize + step;
        if to < 0 || to as usize >= count() {
            return;
        }
        edit("order", Box::new(move |pl, s| pl.move_stage(s, to as usize).map_err(|e| e.to_string())));
        // Keep focus on the button pressed (the other one at the ends).
        let other = if from == "up" { "down" } else { "up" };
        let at_end = to == 0 || to as usize == count() - 1;
        let keep = if at_end { other } else { from };
        focus_id(sid.with_value(|s| format!("stage-{keep}-{s}")));
    };
    let label = move |what: &str| format!("{what} of stage {}", name_now());
    let at_bottom = move || index.get() + 1 >= count();
    let ids = sid.with_value(|s| {
        (
            format!("stage-name-{s}"),
            format!("stage-prob-{s}"),
            format!("stage-outcome-{s}"),
            format!("stage-up-{s}"),
            format!("stage-down-{s}"),
            format!("stage-error-{s}"),
        )
    });
    let (name_id, prob_id, outcome_id, up_id, down_id, error_id) = ids;
    let invalid =
        move |field: &'static str| error.with(|e| e.as_ref().is_some_and(|(_, f)| *f == field)).then_some("true");
    let error_id2 = error_id.clone();
    let described = move |field: &'static str| invalid(field).map(|_| error_id2.clone());
    let described2 = described.clone();

    view! {
        <tr data-testid="stage-row">
            <td class="order-cell">
                <button type="button" id=up_id class="btn small ghost" aria-label=move || format!("Move {} up", name_now())
                    disabled=move || index.get() == 0 on:click=move |_| move_by(-1, "up")>"↑"</button>
                <button type="button" id=down_id class="btn small ghost" aria-label=move || format!("Move {} down", name_now())
                    disabled=at_bottom on:click=move |_| move_by(1, "down")>"↓"</button>
            </td>
            <td>
                <input id=name_id aria-label=move || label("Name") prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev))
                    aria-invalid=move || invalid("name") aria-describedby=move || described("name")
                    on:change=move |_| {
                        let n = name.get_untracked().trim().to_owned();
                        edit("name", Box::new(move |pl, s| {
                            if n.is_empty() { return Err(PipelineError::EmptyName.to_string()); }
                            if let Some(st) = pl.stages.get_mut(s) { st.name = n; }
                            Ok(())
                        }));
                    }/>
            </td>
            <td>
                <input id=prob_id inputmode="numeric" class="narrow" aria-label=move || label("Default probability (%)")
                    prop:value=move || probability.get() on:input=move |ev| probability.set(event_target_value(&ev))
                    aria-invalid=move || invalid("probability") aria-describedby=move || described2("probability")
                    on:change=move |_| {
                        let typed = probability.get_untracked();
                        edit("probability", Box::new(move |pl, s| {
                            let p: u8 = typed.trim().parse().ok().filter(|p| *p <= 100).ok_or_else(|| PipelineError::BadProbability.to_string())?;
                            if let Some(st) = pl.stages.get_mut(s) { st.probability = p; }
                            Ok(())
                        }));
                    }/>
            </td>
            <td>
                <select id=outcome_id aria-label=move || label("Outcome")
                    on:change=move |ev| {
                        let Some(o) = Outcome::parse(&event_target_value(&ev)) else { return };
                        edit("outcome", Box::new(move |pl, s| {
                            let open_left = pl.stages.iter().filter(|(k, st)| *k != s && !st.archived && st.outcome == Outcome::Open).count();
                            if o != Outcome::Open && open_left == 0 {
                                return Err(PipelineError::LastOpenStage.to_string());
                            }
                            if let Some(st) = pl.stages.get_mut(s) { st.outcome = o; }
                            Ok(())
                        }));
                    }>
                    {[Outcome::Open, Outcome::Won, Outcome::Lost].into_iter().map(|o| view! {
                        <option value=o.as_str() selected=move || stage.with(|s| s.as_ref().is_some_and(|s| s.outcome == o))>{o.label()}</option>
                    }).collect_view()}
                </select>
            </td>
            <td class="num">{move || sid.with_value(|s| counts.with(|c| c.get(s).copied().unwrap_or(0)))}</td>
            <td>
                <button type="button" class="btn small" aria-label=move || format!("Archive stage {}", name_now())
                    on:click=move |_| edit("archive", Box::new(|pl, s| pl.archive_stage(s).map_err(|e| match e {
                        PipelineError::LastOpenStage => "This is the last open stage; a pipeline needs at least one. Add another open stage first.".to_owned(),
                        other => other.to_string(),
                    })))>"Archive"</button>
            </td>
        </tr>
        {move || error.get().map(|(e, _)| view! {
            <tr class="stage-error-row"><td colspan="6"><FieldError id=error_id.clone() error=Signal::derive(move || Some(e.clone()))/></td></tr>
        })}
    }
}

#[component]
fn AddStage(pid: PipelineId) -> impl IntoView {
    let app = use_app();
    let pid = StoredValue::new(pid);
    let name = RwSignal::new(String::new());
    let probability = RwSignal::new("20".to_owned());
    let outcome = RwSignal::new(Outcome::Open);
    let errors = RwSignal::new((None::<String>, None::<String>));
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let n = name.get_untracked();
        let p: Option<u8> = probability.get_untracked().trim().parse().ok().filter(|p| *p <= 100);
        let Some(p) = p else {
            errors.set((None, Some(PipelineError::BadProbability.to_string())));
            request_animation_frame(browser::focus_first_invalid);
            return;
        };
        let id: StageId = browser::new_record_id().to_string();
        let pl = pid.get_value();
        let result = save(|w| {
            let pipeline = w.pipelines.get_mut(&pl).ok_or("That pipeline is gone")?;
            pipeline.add_stage(id, &n, p, outcome.get_untracked()).map_err(|e| e.to_string())
        });
        match result {
            Ok(()) => {
                errors.set((None, None));
                app.notify(format!("Added stage {}", n.trim()), None);
                name.set(String::new());
            }
            Err(e) => {
                errors.set((Some(e), None));
                request_animation_frame(browser::focus_first_invalid);
            }
        }
    };
    let ids = pid.with_value(|p| {
        (format!("new-stage-name-{p}"), format!("new-stage-prob-{p}"), format!("new-stage-outcome-{p}"))
    });
    let outcome_id = ids.2.clone();
    view! {
        <form class="form inline-form add-stage" on:submit=submit>
            <Field id=ids.0 label="New stage name" value=name error=Signal::derive(move || errors.get().0)/>
            <Field id=ids.1 label="Its default probability (%)" value=probability error=Signal::derive(move || errors.get().1)/>
            <div class="field">
                <label for=outcome_id>"Its outcome"</label>
                <select id=ids.2 on:change=move |ev| outcome.set(Outcome::parse(&event_target_value(&ev)).unwrap_or_default())>
                    <option value="open">"Open"</option>
                    <option value="won">"Won"</option>
                    <option value="lost">"Lost"</option>
                </select>
            </div>
            <button type="submit" class="btn">"Add stage"</button>
        </form>
    }
}

/// A labelled text input with its error, for ids built at run time.
#[component]
fn Field(
    id: String,
    label: &'static str,
    value: RwSignal<String>,
    #[prop(into)] error: Signal<Option<String>>,
) -> impl IntoView {
    let error_id = format!("{id}-error");
    let described = error_id.clone();
    view! {
        <div class="field" class:invalid=move || error.get().is_some()>
            <label for=id.clone()>{label}</label>
            <input id=id autocomplete="off" prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))
                aria-invalid=move || error.get().is_some().then_some("true")
                aria-describedby=move || error.get().is_some().then(|| described.clone())/>
            <FieldError id=error_id error=error/>
        </div>
    }
}
