//! Microsoft Graph's v1.0 schema (CSDL, `../shared/graph-schema/cleanMetadata-v1.0.xml`)
//! read into what a JSON body is checked against: entity and complex types with their
//! properties (base types followed, open types noted), enum types with their members,
//! and bound actions with their parameters.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::Event;
use serde_json::Value;

/// One structured type.
#[derive(Debug, Default)]
pub struct TypeDef {
    pub base: Option<String>,
    pub open: bool,
    pub properties: HashMap<String, String>,
}

/// The schema.
#[derive(Debug, Default)]
pub struct Schema {
    pub types: HashMap<String, TypeDef>,
    pub enums: HashMap<String, HashSet<String>>,
    /// Action name → parameter name (lowercase) → type.
    pub actions: HashMap<String, HashMap<String, String>>,
}

fn attribute(e: &quick_xml::events::BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .map(|a| a.value.to_string())
}

impl Schema {
    /// Reads the CSDL at `path`.
    pub fn load(path: &Path) -> Schema {
        let text = std::fs::read_to_string(path).expect("the Graph schema");
        let mut reader = Reader::from_str(&text);
        let mut schema = Schema::default();
        let mut current_type: Option<String> = None;
        let mut current_enum: Option<String> = None;
        let mut current_action: Option<String> = None;
        loop {
            let event = reader.read_event().expect("well-formed CSDL");
            let (element, closing) = match &event {
                Event::Start(e) => (Some(e.clone()), false),
                Event::Empty(e) => (Some(e.clone()), true),
                Event::End(e) => {
                    match e.local_name().as_ref() {
                        "EntityType" | "ComplexType" => current_type = None,
                        "EnumType" => current_enum = None,
                        "Action" => current_action = None,
                        _ => {}
                    }
                    (None, false)
                }
                Event::Eof => break,
                _ => (None, false),
            };
            let Some(e) = element else { continue };
            match e.local_name().as_ref() {
                "EntityType" | "ComplexType" => {
                    let name = format!("graph.{}", attribute(&e, "Name").unwrap_or_default());
                    schema.types.insert(
                        name.clone(),
                        TypeDef {
                            base: attribute(&e, "BaseType"),
                            open: attribute(&e, "OpenType").as_deref() == Some("true"),
                            properties: HashMap::new(),
                        },
                    );
                    current_type = (!closing).then_some(name);
                }
                "Property" | "NavigationProperty" => {
                    if let (Some(t), Some(name), Some(ty)) =
                        (&current_type, attribute(&e, "Name"), attribute(&e, "Type"))
                        && let Some(def) = schema.types.get_mut(t)
                    {
                        def.properties.insert(name, ty);
                    }
                }
                "EnumType" => {
                    let name = format!("graph.{}", attribute(&e, "Name").unwrap_or_default());
                    schema.enums.insert(name.clone(), HashSet::new());
                    current_enum = (!closing).then_some(name);
                }
                "Member" => {
                    if let (Some(en), Some(name)) = (&current_enum, attribute(&e, "Name"))
                        && let Some(members) = schema.enums.get_mut(en)
                    {
                        members.insert(name);
                    }
                }
                "Action" => {
                    let name = attribute(&e, "Name").unwrap_or_default();
                    schema.actions.entry(name.clone()).or_default();
                    current_action = (!closing).then_some(name);
                }
                "Parameter" => {
                    if let (Some(a), Some(name), Some(ty)) = (
                        &current_action,
                        attribute(&e, "Name"),
                        attribute(&e, "Type"),
                    ) && let Some(params) = schema.actions.get_mut(a)
                    {
                        params.insert(name.to_ascii_lowercase(), ty);
                    }
                }
                _ => {}
            }
        }
        schema
    }

    /// The type of property `name` of `ty`, following base types.
    fn property(&self, ty: &str, name: &str) -> Option<&String> {
        let mut at = Some(ty.to_owned());
        while let Some(t) = at {
            let def = self.types.get(&t)?;
            if let Some(p) = def.properties.get(name) {
                return Some(p);
            }
            at = def.base.clone();
        }
        None
    }

    /// Whether `ty` takes properties it does not declare: an open type that declares
    /// none (`resourceData`). An open type with declared properties (`event`) is held
    /// to them: a property we send or simulate must be one Graph defines.
    fn is_open(&self, ty: &str) -> bool {
        self.types
            .get(ty)
            .is_some_and(|def| def.open && def.properties.is_empty() && def.base.is_none())
    }

    /// What in `value` the schema does not allow for type `ty` (`Collection(…)`,
    /// `Edm.*`, an enum, an entity or complex type), each with its path.
    pub fn check(&self, value: &Value, ty: &str, path: &str, errors: &mut Vec<String>) {
        if value.is_null() {
            return;
        }
        if let Some(inner) = ty
            .strip_prefix("Collection(")
            .and_then(|t| t.strip_suffix(')'))
        {
            match value.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item, inner, &format!("{path}[{i}]"), errors);
                    }
                }
                None => errors.push(format!("{path}: {ty} must be an array")),
            }
            return;
        }
        match ty {
            "Edm.String" | "Edm.Binary" => {
                if !value.is_string() {
                    errors.push(format!("{path}: {ty} must be a string"));
                }
            }
            "Edm.Guid" => {
                let ok = value.as_str().is_some_and(|s| {
                    s.len() == 36
                        && s.chars().enumerate().all(|(i, c)| {
                            if [8, 13, 18, 23].contains(&i) {
                                c == '-'
                            } else {
                                c.is_ascii_hexdigit()
                            }
                        })
                });
                if !ok {
                    errors.push(format!("{path}: Edm.Guid must be a GUID, got {value}"));
                }
            }
            "Edm.DateTimeOffset" => {
                let parses = value
                    .as_str()
                    .is_some_and(|s| s.parse::<jiff::Timestamp>().is_ok());
                if !parses {
                    errors.push(format!(
                        "{path}: Edm.DateTimeOffset must be a date and time with offset, got {value}"
                    ));
                }
            }
            "Edm.Boolean" => {
                if !value.is_boolean() {
                    errors.push(format!("{path}: Edm.Boolean must be true or false"));
                }
            }
            "Edm.Int32" | "Edm.Int64" | "Edm.Int16" => {
                if !value.is_i64() {
                    errors.push(format!("{path}: {ty} must be a whole number"));
                }
            }
            _ if self.enums.contains_key(ty) => {
                let members = &self.enums[ty];
                match value.as_str() {
                    Some(s) if s.split(',').all(|m| members.contains(m.trim())) => {}
                    _ => errors.push(format!("{path}: {value} is not a member of {ty}")),
                }
            }
            _ if self.types.contains_key(ty) => match value.as_object() {
                Some(map) => {
                    for (key, v) in map {
                        if key.starts_with('@') || key.contains("@odata.") {
                            continue;
                        }
                        match self.property(ty, key) {
                            Some(pty) => self.check(v, pty, &format!("{path}.{key}"), errors),
                            None if self.is_open(ty) => {}
                            None => {
                                errors.push(format!("{path}.{key}: {ty} has no property {key}"))
                            }
                        }
                    }
                }
                None => errors.push(format!("{path}: {ty} must be an object")),
            },
            other => errors.push(format!("{path}: the schema has no type {other}")),
        }
    }

    /// What in `value` the parameters of action `action` do not allow (parameter
    /// names compared without case: the CSDL spells them `Schedules`, Graph's
    /// documentation and clients `schedules`, and Graph takes both).
    pub fn check_action(&self, value: &Value, action: &str, errors: &mut Vec<String>) {
        let Some(params) = self.actions.get(action) else {
            errors.push(format!("the schema has no action {action}"));
            return;
        };
        let Some(map) = value.as_object() else {
            errors.push(format!("{action}: parameters must be an object"));
            return;
        };
        for (key, v) in map {
            match params.get(&key.to_ascii_lowercase()) {
                Some(ty) => self.check(v, ty, &format!("{action}.{key}"), errors),
                None => errors.push(format!("{action}.{key}: the action has no parameter {key}")),
            }
        }
    }
}
