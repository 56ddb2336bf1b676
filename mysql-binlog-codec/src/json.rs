//! TEMPORARY placeholder until the JSON module lands (being written in parallel).
#![allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    #[error("json not yet supported")]
    Unsupported,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonBinary<'a>(&'a [u8]);
impl<'a> JsonBinary<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Self(b)
    }
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
    pub fn to_text(&self) -> Result<String, JsonError> {
        Err(JsonError::Unsupported)
    }
    pub fn to_dom(&self) -> Result<JsonDom, JsonError> {
        Err(JsonError::Unsupported)
    }
}
#[derive(Debug, Clone, PartialEq)]
pub enum JsonDom {
    Null,
}
impl JsonDom {
    pub fn to_text(&self) -> String {
        "null".into()
    }
}
