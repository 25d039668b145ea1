// Copyright 2026 Cloudflare, Inc.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
// http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

use crate::*;
use bytes::Bytes;
use http::header;

#[derive(Debug, Clone)]
pub struct CaseHeaderName(Bytes);

impl CaseHeaderName {
    pub fn new(name: String) -> Self {
        CaseHeaderName(name.into())
    }
}

impl CaseHeaderName {
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    pub fn from_slice(buf: &[u8]) -> Self {
        CaseHeaderName(Bytes::copy_from_slice(buf))
    }
}

/// A trait that converts into case-sensitive header names.
pub trait IntoCaseHeaderName {
    fn into_case_header_name(self) -> CaseHeaderName;

    /// The name as a [`HeaderName`], and its case-sensitive form when the caller gave one.
    ///
    /// The default parses the case-sensitive name. A caller that already holds a
    /// [`HeaderName`] skips that parse, and its case-sensitive form is only made when the
    /// header map keeps one (`None` here: see [`case_header_name_of`]).
    fn into_header_names(self) -> std::result::Result<(HeaderName, Option<CaseHeaderName>), http::header::InvalidHeaderName>
    where
        Self: Sized,
    {
        let case_header_name = self.into_case_header_name();
        let header_name = HeaderName::from_bytes(case_header_name.as_slice())?;
        Ok((header_name, Some(case_header_name)))
    }
}

/// The case-sensitive form of a [`HeaderName`] given without one: its standard title case.
pub(crate) fn case_header_name_of(header_name: &HeaderName) -> CaseHeaderName {
    CaseHeaderName(titled_header_name(header_name))
}

impl IntoCaseHeaderName for CaseHeaderName {
    fn into_case_header_name(self) -> CaseHeaderName {
        self
    }
}

impl IntoCaseHeaderName for String {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(self.into())
    }
}

impl IntoCaseHeaderName for &'static str {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(self.into())
    }
}

impl IntoCaseHeaderName for HeaderName {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(titled_header_name(&self))
    }

    fn into_header_names(self) -> std::result::Result<(HeaderName, Option<CaseHeaderName>), http::header::InvalidHeaderName> {
        Ok((self, None))
    }
}

impl IntoCaseHeaderName for &HeaderName {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(titled_header_name(self))
    }

    fn into_header_names(self) -> std::result::Result<(HeaderName, Option<CaseHeaderName>), http::header::InvalidHeaderName> {
        Ok((self.clone(), None))
    }
}

/// A [`HeaderName`] together with the case-sensitive form it is written in, both made once
/// (a constant, or a name read from configuration). Adding it to a header that keeps the
/// original case of its names then neither parses the name nor copies it into a new buffer:
/// both forms are cloned (a static name is not even reference-counted).
#[derive(Debug, Clone)]
pub struct CasedHeaderName {
    name: HeaderName,
    case: CaseHeaderName,
}

impl CasedHeaderName {
    /// `name`, written as [`HeaderName`] is written without a case form: its standard title
    /// case, or lowercase.
    pub fn new(name: HeaderName) -> Self {
        let case = case_header_name_of(&name);
        CasedHeaderName { name, case }
    }

    /// A name known when compiling, written as given (lowercase, as
    /// [`HeaderName::from_static`] requires; it panics on anything else, as that does).
    pub const fn from_static(name: &'static str) -> Self {
        CasedHeaderName {
            name: HeaderName::from_static(name),
            case: CaseHeaderName(Bytes::from_static(name.as_bytes())),
        }
    }

    /// The name.
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    /// The name as it is written on the wire.
    pub fn as_cased_bytes(&self) -> &[u8] {
        self.case.as_slice()
    }
}

impl IntoCaseHeaderName for &CasedHeaderName {
    fn into_case_header_name(self) -> CaseHeaderName {
        self.case.clone()
    }

    fn into_header_names(self) -> std::result::Result<(HeaderName, Option<CaseHeaderName>), http::header::InvalidHeaderName> {
        Ok((self.name.clone(), Some(self.case.clone())))
    }
}

impl IntoCaseHeaderName for Bytes {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(self)
    }
}

fn titled_header_name(header_name: &HeaderName) -> Bytes {
    titled_header_name_str(header_name).map_or_else(
        || Bytes::copy_from_slice(header_name.as_str().as_bytes()),
        |s| Bytes::from_static(s.as_bytes()),
    )
}

pub(crate) fn titled_header_name_str(header_name: &HeaderName) -> Option<&'static str> {
    Some(match *header_name {
        header::ACCEPT_RANGES => "Accept-Ranges",
        header::AGE => "Age",
        header::CACHE_CONTROL => "Cache-Control",
        header::CONNECTION => "Connection",
        header::CONTENT_TYPE => "Content-Type",
        header::CONTENT_ENCODING => "Content-Encoding",
        header::CONTENT_LENGTH => "Content-Length",
        header::DATE => "Date",
        header::TRANSFER_ENCODING => "Transfer-Encoding",
        header::HOST => "Host",
        header::SERVER => "Server",
        header::SET_COOKIE => "Set-Cookie",
        // TODO: add more const header here to map to their titled case
        // TODO: automatically upper case the first letter?
        _ => {
            return None;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cased_header_names_are_written_as_made() {
        let custom = CasedHeaderName::new(HeaderName::from_static("x-auth-request-user"));
        assert_eq!(custom.into_case_header_name().as_slice(), b"x-auth-request-user");
        let standard = CasedHeaderName::new(header::SERVER);
        assert_eq!(standard.into_case_header_name().as_slice(), b"Server");
        static CONSTANT: CasedHeaderName = CasedHeaderName::from_static("x-request-id");
        let (name, case) = (&CONSTANT).into_header_names().unwrap();
        assert_eq!(name, HeaderName::from_static("x-request-id"));
        assert_eq!(case.unwrap().as_slice(), b"x-request-id");
        assert_eq!(CONSTANT.name().as_str(), "x-request-id");
    }

    #[test]
    fn test_case_header_name() {
        assert_eq!("FoO".into_case_header_name().as_slice(), b"FoO");
        assert_eq!("FoO".to_string().into_case_header_name().as_slice(), b"FoO");
        assert_eq!(header::SERVER.into_case_header_name().as_slice(), b"Server");
    }
}
