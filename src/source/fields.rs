//! Reading a JSON object field by field, so that every error names the file and the field
//! (`connectionRecordings[0].startTimestamp`) (pure).

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::source::time::{parse_iso_ms, seconds_to_ms};

/// One JSON object of a metadata file, and where it is in the file.
pub struct Fields<'a> {
    /// The file, for messages.
    pub file: &'a str,
    /// The object's path in the file (`[2]`, `connectionRecordings[0]`), `""` at the root.
    pub at: String,
    pub obj: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// The root object of `value`.
    pub fn root(file: &'a str, value: &'a Value) -> Result<Fields<'a>> {
        Fields::object(file, String::new(), value)
    }

    /// `value` at path `at`, which must be an object.
    pub fn object(file: &'a str, at: String, value: &'a Value) -> Result<Fields<'a>> {
        match value.as_object() {
            Some(obj) => Ok(Fields { file, at, obj }),
            None => Err(Error::InvalidEvent {
                name: file.to_owned(),
                field: if at.is_empty() { "(root)".into() } else { at },
                reason: "is not a JSON object".into(),
            }),
        }
    }

    /// The path of `key` in this object.
    pub fn path(&self, key: &str) -> String {
        if self.at.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.at)
        }
    }

    /// An error about `key`.
    pub fn error(&self, key: &str, reason: impl Into<String>) -> Error {
        Error::InvalidEvent {
            name: self.file.to_owned(),
            field: self.path(key),
            reason: reason.into(),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    /// A child object, if present.
    pub fn child(&self, key: &str) -> Result<Option<Fields<'a>>> {
        self.get(key)
            .map(|v| Fields::object(self.file, self.path(key), v))
            .transpose()
    }

    /// A string field, if present (and a string).
    pub fn str(&self, key: &str) -> Result<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(self.error(key, format!("expected a string, found {other}"))),
        }
    }

    /// A string field that must be present and not empty.
    pub fn required_str(&self, key: &str) -> Result<&'a str> {
        match self.str(key)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            Some(_) => Err(self.error(key, "is empty")),
            None => Err(self.error(key, "is missing")),
        }
    }

    /// A non-empty string field, if present; empty strings count as absent.
    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>> {
        Ok(self.str(key)?.filter(|s| !s.trim().is_empty()))
    }

    /// An ISO-8601 time field, as Unix ms, if present.
    pub fn time(&self, key: &str) -> Result<Option<i64>> {
        self.opt_str(key)?
            .map(|s| parse_iso_ms(s).map_err(|reason| self.error(key, reason)))
            .transpose()
    }

    /// An ISO-8601 time field that must be present.
    pub fn required_time(&self, key: &str) -> Result<i64> {
        self.time(key)?.ok_or_else(|| self.error(key, "is missing"))
    }

    /// A boolean field, if present.
    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.error(key, format!("expected true or false, found {other}"))),
        }
    }

    /// A number of seconds, as whole ms, if present.
    pub fn seconds_ms(&self, key: &str) -> Result<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                n.as_f64().and_then(seconds_to_ms).map(Some).ok_or_else(|| {
                    self.error(key, format!("{n} is not a usable number of seconds"))
                })
            }
            Some(other) => Err(self.error(key, format!("expected seconds, found {other}"))),
        }
    }

    /// A string or a number, as text (ids that some senders write as numbers), if present.
    pub fn text(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(self.error(key, format!("expected a string, found {other}"))),
        }
    }

    /// A non-negative integer, if present.
    pub fn u64(&self, key: &str) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.error(key, format!("expected a whole number, found {v}"))),
        }
    }
}
