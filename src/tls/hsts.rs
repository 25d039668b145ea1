//! `Strict-Transport-Security` on every response of the HTTPS listener: a Pingora downstream
//! module, so that frontdoor's own pages and endpoints, proxied responses and error answers
//! all carry it.

use std::any::Any;

use async_trait::async_trait;
use http::HeaderValue;
use pingora::http::ResponseHeader;
use pingora::modules::http::{HttpModule, HttpModuleBuilder, Module};

use crate::config::Config;

/// Builds the per-request HSTS module.
pub struct HstsBuilder {
    value: HeaderValue,
}

impl HstsBuilder {
    /// The module for this config, when `tls.hsts` is set.
    pub fn for_config(config: &Config) -> Option<HstsBuilder> {
        let hsts = config.tls.as_ref()?.hsts.as_ref()?;
        let value = HeaderValue::from_str(&hsts.header_value()).ok()?;
        Some(HstsBuilder { value })
    }
}

impl HttpModuleBuilder for HstsBuilder {
    fn init(&self) -> Module {
        Box::new(Hsts {
            value: self.value.clone(),
        })
    }
}

struct Hsts {
    value: HeaderValue,
}

#[async_trait]
impl HttpModule for Hsts {
    async fn response_header_filter(
        &mut self,
        resp: &mut ResponseHeader,
        _end_of_stream: bool,
    ) -> pingora::Result<()> {
        // frontdoor's setting wins over an upstream's: the policy is the front door's.
        resp.insert_header(http::header::STRICT_TRANSPORT_SECURITY, self.value.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
