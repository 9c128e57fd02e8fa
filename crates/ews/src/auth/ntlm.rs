//! The client side of one NTLMv2 handshake, through the `sspi` crate: the NEGOTIATE
//! message to open with, then the AUTHENTICATE message that answers the server's
//! CHALLENGE, carrying the Extended Protection channel binding when the connection is
//! TLS. One handshake authenticates one connection; nothing here touches the network.

use sspi::{
    AuthIdentity, AuthIdentityBuffers, BufferType, ClientRequestFlags, CredentialUse,
    DataRepresentation, Ntlm, SecurityBuffer, SecurityStatus, Sspi, SspiImpl, Username,
};

use super::Secret;

/// Why a handshake could not go on (never carries a secret or a message's bytes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("NTLM: {0}")]
pub struct NtlmError(String);

fn failed(step: &str, e: impl std::fmt::Display) -> NtlmError {
    NtlmError(format!("{step}: {e}"))
}

/// A handshake waiting for the server's CHALLENGE.
pub struct NtlmHandshake {
    ntlm: Ntlm,
    credentials: Option<AuthIdentityBuffers>,
    target: String,
}

impl std::fmt::Debug for NtlmHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NtlmHandshake")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Parses `DOMAIN\user` or `user@domain` the way Windows does.
pub fn parse_username(username: &str) -> Result<Username, NtlmError> {
    Username::parse(username).map_err(|e| failed("the username", e))
}

impl NtlmHandshake {
    /// Starts a handshake with `host` (its SPN is `HTTP/host`); `channel_binding` is
    /// the `tls-server-end-point` token of the connection, when it is TLS. Returns the
    /// NEGOTIATE message to send.
    pub fn start(
        username: &str,
        password: &Secret,
        host: &str,
        channel_binding: Option<&[u8]>,
    ) -> Result<(NtlmHandshake, Vec<u8>), NtlmError> {
        let identity = AuthIdentity {
            username: parse_username(username)?,
            password: password.expose().to_owned().into(),
        };
        let mut ntlm = Ntlm::new();
        if let Some(binding) = channel_binding {
            ntlm.set_channel_bindings(binding);
        }
        let credentials = ntlm
            .acquire_credentials_handle()
            .with_credential_use(CredentialUse::Outbound)
            .with_auth_data(&identity)
            .execute(&mut ntlm)
            .map_err(|e| failed("the credentials", e))?
            .credentials_handle;
        let mut handshake = NtlmHandshake {
            ntlm,
            credentials,
            target: format!("HTTP/{host}"),
        };
        let negotiate = handshake.step(None)?.0;
        Ok((handshake, negotiate))
    }

    /// Answers the server's CHALLENGE with the AUTHENTICATE message.
    pub fn answer(mut self, challenge: &[u8]) -> Result<Vec<u8>, NtlmError> {
        let (message, status) = self.step(Some(challenge))?;
        if matches!(
            status,
            SecurityStatus::CompleteNeeded | SecurityStatus::CompleteAndContinue
        ) {
            let mut done = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
            self.ntlm
                .complete_auth_token(&mut done)
                .map_err(|e| failed("completing", e))?;
        }
        Ok(message)
    }

    fn step(&mut self, input: Option<&[u8]>) -> Result<(Vec<u8>, SecurityStatus), NtlmError> {
        let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let mut input_buffers =
            input.map(|bytes| vec![SecurityBuffer::new(bytes.to_vec(), BufferType::Token)]);
        let mut builder = self
            .ntlm
            .initialize_security_context()
            .with_credentials_handle(&mut self.credentials)
            .with_context_requirements(ClientRequestFlags::ALLOCATE_MEMORY)
            .with_target_data_representation(DataRepresentation::Native)
            .with_target_name(&self.target)
            .with_output(&mut output);
        if let Some(buffers) = input_buffers.as_mut() {
            builder = builder.with_input(buffers);
        }
        let step = if input.is_some() {
            "reading the challenge"
        } else {
            "writing NEGOTIATE"
        };
        let result = self
            .ntlm
            .initialize_security_context_impl(&mut builder)
            .map_err(|e| failed(step, e))?
            .resolve_to_result()
            .map_err(|e| failed(step, e))?;
        let message = output
            .pop()
            .map(|b| b.buffer)
            .filter(|b| !b.is_empty())
            .ok_or_else(|| NtlmError(format!("{step}: no message came out")))?;
        Ok((message, result.status))
    }
}
