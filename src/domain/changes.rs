//! Field changes (old → new) recorded in append-only histories.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// One field's value before and after a change.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ToSchema)]
pub struct FieldChange {
    /// Field name as it appears in the resource's JSON.
    pub field: String,
    /// Value before the change (`null` when the resource was created).
    pub old: Value,
    /// Value after the change.
    pub new: Value,
}

/// Collects the fields that actually changed.
#[derive(Debug, Default, Clone)]
pub struct Changes(Vec<FieldChange>);

impl Changes {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `field` when `old` and `new` differ.
    pub fn track<T: Serialize + PartialEq>(&mut self, field: &str, old: &T, new: &T) -> &mut Self {
        if old != new {
            self.0.push(FieldChange {
                field: field.to_owned(),
                old: to_value(old),
                new: to_value(new),
            });
        }
        self
    }

    /// Records a field set at creation.
    pub fn created<T: Serialize>(&mut self, field: &str, value: &T) -> &mut Self {
        self.0.push(FieldChange {
            field: field.to_owned(),
            old: Value::Null,
            new: to_value(value),
        });
        self
    }

    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The recorded changes.
    pub fn into_vec(self) -> Vec<FieldChange> {
        self.0
    }
}

fn to_value<T: Serialize>(value: &T) -> Value {
    // Serialising plain field values (strings, numbers, options, enums) cannot fail.
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The fields that differ between `old` (none at creation) and `new`, by their JSON names,
/// leaving out the bookkeeping fields `untracked`.
pub fn json_diff<T: Serialize>(old: Option<&T>, new: &T, untracked: &[&str]) -> Vec<FieldChange> {
    let as_map = |value: &T| match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        // A struct of plain fields always serialises to an object.
        _ => serde_json::Map::new(),
    };
    let mut old_map = old.map(as_map);
    // Values move from the two maps into the changes: a resource has dozens of fields and every
    // write records its diff, so no value is cloned on the way.
    as_map(new)
        .into_iter()
        .filter(|(field, _)| !untracked.contains(&field.as_str()))
        .filter_map(|(field, new)| {
            let old = old_map
                .as_mut()
                .and_then(|map| map.remove(&field))
                .unwrap_or(Value::Null);
            (old != new).then_some(FieldChange { field, old, new })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_differences_are_recorded() {
        let mut changes = Changes::new();
        changes
            .track("name", &"a", &"a")
            .track("system", &"HIS", &"LIS");
        let list = changes.into_vec();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].field, "system");
        assert_eq!(list[0].old, json!("HIS"));
        assert_eq!(list[0].new, json!("LIS"));
    }

    #[test]
    fn creation_records_null_as_old_value() {
        let mut changes = Changes::new();
        changes.created("customer_id", &Some(4));
        assert_eq!(changes.into_vec()[0].old, Value::Null);
    }
}
