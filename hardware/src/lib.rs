//! Ledger hardware signing for keyward (the Ethereum app client arrives in a later issue).
