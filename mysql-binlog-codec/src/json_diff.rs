//! TEMPORARY placeholder.
#![allow(missing_docs)]
use crate::json::{JsonBinary, JsonDom, JsonError};
pub struct JsonDiff<'a> {
    pub path: &'a str,
    pub value: Option<JsonBinary<'a>>,
}
pub fn parse_json_diffs(_b: &[u8]) -> Result<Vec<JsonDiff<'_>>, JsonError> {
    Err(JsonError::Unsupported)
}
pub fn apply_json_diffs(_d: &mut JsonDom, _x: &[JsonDiff<'_>]) -> Result<(), JsonError> {
    Err(JsonError::Unsupported)
}
