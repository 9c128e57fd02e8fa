//! CreateItem, UpdateItem and DeleteItem on calendar items, and GetFolder for the
//! distinguished calendar (and root) folders: enough of Exchange for clients such as
//! exchangelib to create and delete meetings. Every change raises the same events as
//! the control API's.

use std::sync::Arc;

use super::Sim;
use super::endpoint::{CallContext, Reply, folder_mailbox};
use super::model::{
    ItemPatch, ModelError, NewItem, change_key, folder_id, item_id, parse_folder_id, parse_item_id,
};
use super::request::{Request, boolean};
use super::soap_out::{self, Failure};
use super::timezone::{self, ZoneRule};
use ews::ops::get_user_availability::BusyType;
use ews::types::EwsDateTime;
use ews::xml_tree::Element;

/// Zone for times without an offset: `TimeZoneContext`, else UTC.
pub fn context_zone(req: &Request<'_, '_>) -> ZoneRule {
    req.time_zone_id
        .as_deref()
        .and_then(timezone::known)
        .map_or(timezone::UTC, |z| z.rule)
}

/// Seconds since the epoch of an `xs:dateTime`, reading offset-less times in `zone`.
pub fn parse_time(text: &str, zone: &ZoneRule) -> Option<i64> {
    match EwsDateTime::parse(text.trim())? {
        EwsDateTime::Instant(ts) => Some(ts.as_second()),
        EwsDateTime::Civil { value, .. } => Some(zone.to_utc(value)),
    }
}

fn model_failure(e: ModelError) -> Failure {
    match e {
        ModelError::ItemNotFound => Failure::new(
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        ),
        ModelError::EndBeforeStart => Failure::new(
            "ErrorCalendarEndDateIsEarlierThanStartDate",
            "EndDate is earlier than StartDate",
        ),
        ModelError::CalendarFull(_) => Failure::new("ErrorQuotaExceeded", e.to_string()),
    }
}

fn time_field(
    item: Element<'_, '_>,
    name: &'static str,
    zone: &ZoneRule,
) -> Result<Option<i64>, Failure> {
    match item.ews_child(name) {
        None => Ok(None),
        Some(e) => parse_time(e.text(), zone).map(Some).ok_or_else(|| {
            Failure::new(
                "ErrorInvalidRequest",
                format!("{name} is not an xs:dateTime: {}", e.text()),
            )
        }),
    }
}

fn busy_field(item: Element<'_, '_>) -> Result<Option<BusyType>, Failure> {
    match item.ews_child("LegacyFreeBusyStatus") {
        None => Ok(None),
        Some(e) => BusyType::parse(e.text()).map(Some).ok_or_else(|| {
            Failure::new(
                "ErrorInvalidRequest",
                format!("Unknown LegacyFreeBusyStatus {}", e.text()),
            )
        }),
    }
}

/// Reads the calendar fields of a `CalendarItem` element as a patch.
fn read_fields(item: Element<'_, '_>, zone: &ZoneRule) -> Result<ItemPatch, Failure> {
    let mut patch = ItemPatch {
        start: time_field(item, "Start", zone)?,
        end: time_field(item, "End", zone)?,
        busy: busy_field(item)?,
        subject: item.ews_child("Subject").map(|e| e.text().to_owned()),
    };
    if item
        .ews_child("IsAllDayEvent")
        .and_then(|e| boolean(e.text()))
        == Some(true)
    {
        let day = 86_400;
        patch.start = patch.start.map(|s| s - s.rem_euclid(day));
        patch.end = patch.end.map(|e| {
            if e % day == 0 {
                e
            } else {
                e - e.rem_euclid(day) + day
            }
        });
    }
    Ok(patch)
}

/// The mailbox a folder-addressed operation acts on.
fn target_mailbox(
    sim: &Sim,
    ctx: &CallContext,
    req: &Request<'_, '_>,
    folder: Option<Element<'_, '_>>,
) -> Result<usize, Failure> {
    if req.impersonate.is_none()
        && let Some(address) = folder.and_then(folder_mailbox)
    {
        return sim.directory.lookup(&address).ok_or_else(|| {
            Failure::new(
                "ErrorNonExistentMailbox",
                format!("No mailbox for {address}"),
            )
        });
    }
    sim.acting_mailbox(ctx, req)
}

fn write_item_id(w: &mut ews::xml_write::XmlWriter, mailbox: usize, number: u32, version: u32) {
    w.open("m:Items", &[]);
    w.open("t:CalendarItem", &[]);
    w.empty(
        "t:ItemId",
        &[
            ("Id", &item_id(mailbox, number)),
            ("ChangeKey", &change_key(version)),
        ],
    );
    w.close("t:CalendarItem");
    w.close("m:Items");
}

/// `CreateItem` of calendar items.
pub fn create_item(sim: &Arc<Sim>, ctx: &CallContext, req: &Request<'_, '_>) -> Reply {
    let zone = context_zone(req);
    let folder = req
        .operation
        .ews_child("SavedItemFolderId")
        .and_then(|f| f.ews_child("DistinguishedFolderId"));
    let mailbox = match target_mailbox(sim, ctx, req, folder) {
        Ok(m) => m,
        Err(failure) => {
            return Reply::ok(soap_out::messages(
                "CreateItem",
                [Err::<(), _>(failure)],
                |_, ()| {},
            ));
        }
    };
    let items: Vec<Element<'_, '_>> = req
        .operation
        .ews_child("Items")
        .map(|i| i.children().filter(|c| c.ns().is_ews()).collect())
        .unwrap_or_default();
    let results: Vec<Result<(u32, u32), Failure>> = items
        .into_iter()
        .map(|item| {
            if item.local() != "CalendarItem" {
                return Err(Failure::new(
                    "ErrorInvalidRequest",
                    format!(
                        "The simulator stores calendar items only, not {}.",
                        item.local()
                    ),
                ));
            }
            let fields = read_fields(item, &zone)?;
            let (Some(start), Some(end)) = (fields.start, fields.end) else {
                return Err(Failure::new(
                    "ErrorInvalidRequest",
                    "A calendar item needs Start and End.",
                ));
            };
            let new = NewItem {
                start,
                end,
                busy: fields.busy.unwrap_or(BusyType::Busy),
                subject: fields.subject,
            };
            sim.create_item(mailbox, new)
                .map(|i| (i.number, i.version))
                .map_err(model_failure)
        })
        .collect();
    Reply::ok(soap_out::messages(
        "CreateItem",
        results,
        |w, (number, version)| write_item_id(w, mailbox, number, version),
    ))
}

/// The item an `ItemId` names, if the acting user may change it.
fn owned_item(
    sim: &Sim,
    ctx: &CallContext,
    req: &Request<'_, '_>,
    id: Option<Element<'_, '_>>,
) -> Result<(usize, u32), Failure> {
    let not_found = || {
        Failure::new(
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        )
    };
    let (mailbox, number) = id
        .and_then(|e| e.attr("Id"))
        .and_then(parse_item_id)
        .ok_or_else(not_found)?;
    if mailbox >= sim.directory.len() {
        return Err(not_found());
    }
    let acting = sim.acting_mailbox(ctx, req)?;
    if acting != mailbox {
        return Err(Failure::new(
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        ));
    }
    Ok((mailbox, number))
}

/// `UpdateItem` with SetItemField / DeleteItemField on the calendar fields.
pub fn update_item(sim: &Arc<Sim>, ctx: &CallContext, req: &Request<'_, '_>) -> Reply {
    let zone = context_zone(req);
    let changes: Vec<Element<'_, '_>> = req
        .operation
        .ews_child("ItemChanges")
        .map(|c| c.ews_children("ItemChange").collect())
        .unwrap_or_default();
    let results: Vec<Result<(usize, u32, u32), Failure>> = changes
        .into_iter()
        .map(|change| {
            let (mailbox, number) = owned_item(sim, ctx, req, change.ews_child("ItemId"))?;
            let mut patch = ItemPatch::default();
            for update in change
                .ews_child("Updates")
                .into_iter()
                .flat_map(|u| u.children())
            {
                if !matches!(update.local(), "SetItemField" | "AppendToItemField") {
                    continue;
                }
                if let Some(item) = update.ews_child("CalendarItem") {
                    let fields = read_fields(item, &zone)?;
                    patch.start = fields.start.or(patch.start);
                    patch.end = fields.end.or(patch.end);
                    patch.busy = fields.busy.or(patch.busy);
                    patch.subject = fields.subject.or(patch.subject);
                }
            }
            sim.update_item(mailbox, number, patch)
                .map(|i| (mailbox, i.number, i.version))
                .map_err(model_failure)
        })
        .collect();
    Reply::ok(soap_out::messages(
        "UpdateItem",
        results,
        |w, (mailbox, number, version)| {
            write_item_id(w, mailbox, number, version);
            w.open("m:ConflictResults", &[]);
            w.leaf("t:Count", "0");
            w.close("m:ConflictResults");
        },
    ))
}

/// `DeleteItem`.
pub fn delete_item(sim: &Arc<Sim>, ctx: &CallContext, req: &Request<'_, '_>) -> Reply {
    let ids: Vec<Element<'_, '_>> = req
        .operation
        .ews_child("ItemIds")
        .map(|i| i.children().filter(|c| c.ns().is_ews()).collect())
        .unwrap_or_default();
    let results: Vec<Result<(), Failure>> = ids
        .into_iter()
        .map(|id| {
            let (mailbox, number) = owned_item(sim, ctx, req, Some(id))?;
            sim.delete_item(mailbox, number).map_err(model_failure)
        })
        .collect();
    Reply::ok(soap_out::messages("DeleteItem", results, |_, ()| {}))
}

/// `GetFolder` for the distinguished `calendar`, `root` and `msgfolderroot` folders.
pub fn get_folder(sim: &Arc<Sim>, ctx: &CallContext, req: &Request<'_, '_>) -> Reply {
    let folders: Vec<Element<'_, '_>> = req
        .operation
        .ews_child("FolderIds")
        .map(|f| f.children().filter(|c| c.ns().is_ews()).collect())
        .unwrap_or_default();
    let results: Vec<Result<(usize, &'static str), Failure>> = folders
        .into_iter()
        .map(|folder| {
            let not_found = || {
                Failure::new(
                    "ErrorFolderNotFound",
                    "The specified folder could not be found in the store.",
                )
            };
            let known = |kind: &str| {
                ["calendar", "root", "msgfolderroot"]
                    .into_iter()
                    .find(|k| *k == kind)
            };
            match (folder.local(), folder.attr("Id")) {
                ("DistinguishedFolderId", Some(name)) => {
                    let kind = known(name).ok_or_else(not_found)?;
                    Ok((target_mailbox(sim, ctx, req, Some(folder))?, kind))
                }
                ("FolderId", Some(id)) => {
                    let (mailbox, kind) = parse_folder_id(id).ok_or_else(not_found)?;
                    let kind = known(&kind).ok_or_else(not_found)?;
                    if mailbox >= sim.directory.len() || sim.acting_mailbox(ctx, req)? != mailbox {
                        return Err(not_found());
                    }
                    Ok((mailbox, kind))
                }
                _ => Err(not_found()),
            }
        })
        .collect();
    Reply::ok(soap_out::messages(
        "GetFolder",
        results,
        |w, (mailbox, kind)| {
            let count = sim.directory.with(mailbox, |c| c.items.len()).to_string();
            w.open("m:Folders", &[]);
            let (element, class, name, parent) = match kind {
                "calendar" => (
                    "t:CalendarFolder",
                    Some("IPF.Appointment"),
                    "Calendar",
                    "msgfolderroot",
                ),
                "msgfolderroot" => ("t:Folder", None, "Top of Information Store", "root"),
                _ => ("t:Folder", None, "", "root"),
            };
            w.open(element, &[]);
            w.empty(
                "t:FolderId",
                &[("Id", &folder_id(mailbox, kind)), ("ChangeKey", "AgAAAA==")],
            );
            w.empty(
                "t:ParentFolderId",
                &[
                    ("Id", &folder_id(mailbox, parent)),
                    ("ChangeKey", "AQAAAA=="),
                ],
            );
            if let Some(class) = class {
                w.leaf("t:FolderClass", class);
            }
            w.leaf("t:DisplayName", name);
            w.leaf(
                "t:TotalCount",
                if kind == "calendar" { &count } else { "0" },
            );
            w.leaf("t:ChildFolderCount", "0");
            w.close(element);
            w.close("m:Folders");
        },
    ))
}
