//! Errors from the device and from the link to it. A message a person reads says what happened and
//! what to do next; none carries key material (a device never sends any).

/// The link to the device failed, or the wait for the person ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("no Ledger is connected: plug it in, unlock it and open the Ethereum app")]
    NoDevice,

    #[error("the Ledger was disconnected or stopped answering ({0}): reconnect it and try again")]
    Disconnected(String),

    #[error("the Ledger did not answer within {seconds} s: nothing was signed")]
    TimedOut { seconds: u64 },

    #[error("the wait for the Ledger was cancelled: nothing was signed")]
    Cancelled,

    #[error("the reply from the Ledger is malformed ({0}): reconnect it and try again")]
    Malformed(String),
}

/// What the Ethereum app answered, or why no answer could be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error(transparent)]
    Transport(#[from] TransportError),

    #[error("rejected on the Ledger: nothing was signed")]
    Rejected,

    #[error("the Ledger is locked: unlock it with its PIN and try again")]
    Locked,

    #[error("the Ethereum app is not open on your Ledger: open it and try again")]
    AppNotOpen,

    /// 6A80: the app refused the data. For a transaction with calldata or for hashed EIP-712 this
    /// is what the app answers when blind signing is off.
    #[error(
        "the Ledger refused the data: if the request carries contract calldata or typed data, \
         enable blind signing in the Ethereum app's settings and try again"
    )]
    InvalidData,

    #[error("the Ledger refused the request's length (status 6A87): update the Ethereum app")]
    WrongLength,

    #[error("the Ledger refused the command's parameters (status 6B00): update the Ethereum app")]
    WrongParameters,

    #[error("the Ledger was busy or out of step (status {sw:04X}): try again")]
    OutOfSequence { sw: u16 },

    #[error("the Ledger answered with status {sw:04X}: check the device and try again")]
    Status { sw: u16 },

    #[error("the Ledger's answer does not make sense ({0}): reconnect it and try again")]
    BadReply(String),

    #[error("the derivation path {0}")]
    Path(String),

    #[error("the data to sign {0}")]
    Payload(String),

    /// The in-process emulator could not be set up (a bad recovery phrase). Never carries the
    /// phrase or any of its words.
    #[error("the Ledger emulator could not start: {0}")]
    Emulator(String),
}

pub type Result<T, E = DeviceError> = std::result::Result<T, E>;
