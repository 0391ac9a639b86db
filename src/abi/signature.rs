//! Parsing a function signature as a model writes it into a validated [`Function`].
//!
//! Accepted spellings: `transfer(address,uint256)`, `transfer(address to, uint256 amount)` and
//! `function transfer(address to, uint256 amount) external returns (bool);`. Tuples are written
//! `(address,uint256)` or `tuple(address,uint256)`, optionally with component names. Data
//! locations (`memory`, `calldata`, `storage`) and `address payable` are accepted and dropped, as
//! are `uint`/`int`, which mean `uint256`/`int256`. Everything else is refused with the character
//! where it went wrong: fixed-point and function types, zero-length arrays, empty tuples, types
//! nested deeper than [`MAX_TYPE_DEPTH`], and parameters that could not fit in
//! [`MAX_CALLDATA_BYTES`].

use std::collections::HashSet;
use std::fmt;

use alloy::primitives::keccak256;

use super::{
    AbiError, MAX_CALLDATA_BYTES, MAX_NAME_BYTES, MAX_SIGNATURE_BYTES, MAX_TYPE_DEPTH, Result,
    SignatureProblem,
};

/// A Solidity ABI type. Only [`Function::parse`] builds the ones keyward encodes with, so every
/// size in a [`Function`]'s types is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    Address,
    Bool,
    /// `uintN`: N bits, a multiple of 8 from 8 to 256.
    Uint(usize),
    /// `intN`: N bits, a multiple of 8 from 8 to 256.
    Int(usize),
    /// `bytesN`: N bytes, from 1 to 32.
    FixedBytes(usize),
    Bytes,
    String,
    /// `T[]`
    Array(Box<Type>),
    /// `T[k]`, k at least 1.
    FixedArray(Box<Type>, usize),
    /// `(T1,T2,...)`, at least one component.
    Tuple(Vec<Param>),
}

/// A parameter or tuple component: a type and the name the signature gave it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: Option<String>,
    pub ty: Type,
}

/// A parsed, validated function signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    name: String,
    inputs: Vec<Param>,
    signature: String,
    selector: [u8; 4],
}

impl Function {
    /// Parses a signature such as `transfer(address to, uint256 amount)`; see the module
    /// documentation for what is accepted.
    pub fn parse(text: &str) -> Result<Self> {
        let (name, inputs) = Parser::new(text)?.function()?;
        let signature = format!("{name}({})", List(&inputs));
        let hash = keccak256(signature.as_bytes());
        let selector = [hash[0], hash[1], hash[2], hash[3]];
        Ok(Self {
            name,
            inputs,
            signature,
            selector,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn inputs(&self) -> &[Param] {
        &self.inputs
    }

    /// The canonical signature the selector is hashed from: `transfer(address,uint256)`.
    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// The signature with parameter names: `transfer(address to,uint256 amount)`.
    pub fn named_signature(&self) -> String {
        format!("{}({})", self.name, NamedList(&self.inputs))
    }

    /// keccak256 of the canonical signature, first 4 bytes.
    pub fn selector(&self) -> [u8; 4] {
        self.selector
    }
}

impl Type {
    /// Whether the encoding puts this type in the tail, behind an offset.
    pub(super) fn is_dynamic(&self) -> bool {
        match self {
            Self::Bytes | Self::String | Self::Array(_) => true,
            Self::FixedArray(inner, _) => inner.is_dynamic(),
            Self::Tuple(components) => components.iter().any(|c| c.ty.is_dynamic()),
            _ => false,
        }
    }

    /// The bytes this type takes in the head of its enclosing tuple: an offset word if dynamic,
    /// its whole encoding if static. Bounded for any type [`Function::parse`] accepted.
    pub(super) fn head_size(&self) -> usize {
        if self.is_dynamic() {
            return 32;
        }
        match self {
            Self::FixedArray(inner, len) => inner.head_size().saturating_mul(*len),
            Self::Tuple(components) => components
                .iter()
                .fold(0, |sum: usize, c| sum.saturating_add(c.ty.head_size())),
            _ => 32,
        }
    }

    /// The size of the smallest encoding of a value of this type, head slot included; `None` if
    /// it overflows.
    fn min_encoded_size(&self) -> Option<usize> {
        let inner = match self {
            Self::FixedArray(inner, len) => inner.min_encoded_size()?.checked_mul(*len)?,
            Self::Tuple(components) => components
                .iter()
                .try_fold(0usize, |sum, c| sum.checked_add(c.ty.min_encoded_size()?))?,
            // One word, or for bytes, string and T[] an empty value's length word.
            _ => 32,
        };
        // A dynamic value also takes an offset word in its parent's head.
        inner.checked_add(if self.is_dynamic() { 32 } else { 0 })
    }

    /// Array dimensions and tuples, counted from the outside in.
    fn depth(&self) -> usize {
        match self {
            Self::Array(inner) | Self::FixedArray(inner, _) => inner.depth() + 1,
            Self::Tuple(components) => {
                components.iter().map(|c| c.ty.depth()).max().unwrap_or(0) + 1
            }
            _ => 0,
        }
    }
}

/// The canonical spelling, as hashed into a selector: `(address,uint256)[]`.
impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address => f.write_str("address"),
            Self::Bool => f.write_str("bool"),
            Self::Uint(bits) => write!(f, "uint{bits}"),
            Self::Int(bits) => write!(f, "int{bits}"),
            Self::FixedBytes(len) => write!(f, "bytes{len}"),
            Self::Bytes => f.write_str("bytes"),
            Self::String => f.write_str("string"),
            Self::Array(inner) => write!(f, "{inner}[]"),
            Self::FixedArray(inner, len) => write!(f, "{inner}[{len}]"),
            Self::Tuple(components) => write!(f, "({})", List(components)),
        }
    }
}

/// Types separated by commas, without names.
struct List<'a>(&'a [Param]);

impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, param) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}", param.ty)?;
        }
        Ok(())
    }
}

/// Types with their names, tuple components included: `(address to,uint256 amount)[] moves`.
struct NamedList<'a>(&'a [Param]);

impl fmt::Display for NamedList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, param) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            NamedType(&param.ty).fmt(f)?;
            if let Some(name) = &param.name {
                write!(f, " {name}")?;
            }
        }
        Ok(())
    }
}

struct NamedType<'a>(&'a Type);

impl fmt::Display for NamedType<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Type::Array(inner) => write!(f, "{}[]", NamedType(inner)),
            Type::FixedArray(inner, len) => write!(f, "{}[{len}]", NamedType(inner)),
            Type::Tuple(components) => write!(f, "({})", NamedList(components)),
            other => other.fmt(f),
        }
    }
}

// --- Parser ------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    /// Letters, digits, `_` and `$`: a name, a type, a keyword or an array length.
    Word(&'a str),
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Comma,
    Semicolon,
    End,
}

impl Token<'_> {
    fn describe(self) -> String {
        match self {
            Self::Word(word) => format!("`{word}`"),
            Self::Open => "`(`".into(),
            Self::Close => "`)`".into(),
            Self::OpenBracket => "`[`".into(),
            Self::CloseBracket => "`]`".into(),
            Self::Comma => "`,`".into(),
            Self::Semicolon => "`;`".into(),
            Self::End => "the end of the signature".into(),
        }
    }
}

/// Words allowed between the parameter list and `returns`.
const MODIFIERS: [&str; 6] = [
    "external",
    "public",
    "payable",
    "nonpayable",
    "view",
    "pure",
];
/// Data locations, allowed (and dropped) between a parameter's type and its name.
const LOCATIONS: [&str; 3] = ["memory", "calldata", "storage"];

struct Parser<'a> {
    /// Each token with its byte offset; the last is always [`Token::End`].
    tokens: Vec<(Token<'a>, usize)>,
    next: usize,
}

fn error(at: usize, problem: SignatureProblem) -> AbiError {
    // Offsets are byte offsets into ASCII text, so offset + 1 is the character a person counts.
    AbiError::Signature {
        at: at + 1,
        problem,
    }
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Result<Self> {
        if text.len() > MAX_SIGNATURE_BYTES {
            return Err(error(MAX_SIGNATURE_BYTES, SignatureProblem::TooLong));
        }
        let bytes = text.as_bytes();
        let mut tokens = Vec::new();
        let mut at = 0;
        while let Some(&byte) = bytes.get(at) {
            let token = match byte {
                b' ' | b'\t' | b'\n' | b'\r' => {
                    at += 1;
                    continue;
                }
                b'(' => Token::Open,
                b')' => Token::Close,
                b'[' => Token::OpenBracket,
                b']' => Token::CloseBracket,
                b',' => Token::Comma,
                b';' => Token::Semicolon,
                _ if is_word_byte(byte) => {
                    let len = bytes[at..].iter().take_while(|&&b| is_word_byte(b)).count();
                    tokens.push((Token::Word(&text[at..at + len]), at));
                    at += len;
                    continue;
                }
                _ if byte.is_ascii_graphic() => {
                    return Err(error(
                        at,
                        SignatureProblem::Expected {
                            expected: "a name, a type or punctuation among ( ) [ ] , ;",
                            found: format!("`{}`", char::from(byte)),
                        },
                    ));
                }
                _ => return Err(error(at, SignatureProblem::NotAscii)),
            };
            tokens.push((token, at));
            at += 1;
        }
        if tokens.is_empty() {
            return Err(error(0, SignatureProblem::Empty));
        }
        tokens.push((Token::End, text.len()));
        Ok(Self { tokens, next: 0 })
    }

    fn peek(&self) -> (Token<'a>, usize) {
        self.tokens
            .get(self.next)
            .or(self.tokens.last())
            .copied()
            .unwrap_or((Token::End, 0))
    }

    fn bump(&mut self) -> (Token<'a>, usize) {
        let token = self.peek();
        if self.next < self.tokens.len() {
            self.next += 1;
        }
        token
    }

    fn eat_word(&mut self, words: &[&str]) -> bool {
        match self.peek().0 {
            Token::Word(word) if words.contains(&word) => {
                self.bump();
                true
            }
            _ => false,
        }
    }

    fn expect(&mut self, want: Token<'_>, expected: &'static str) -> Result<()> {
        let (token, at) = self.bump();
        if token == want {
            Ok(())
        } else {
            Err(unexpected(token, at, expected))
        }
    }

    /// `[function] name ( params ) [modifiers] [returns ( params )] [;]`
    fn function(&mut self) -> Result<(String, Vec<Param>)> {
        self.eat_word(&["function"]);
        let name = match self.bump() {
            (Token::Word(word), at) => identifier(word, at)?,
            (token, at) => return Err(unexpected(token, at, "a function name")),
        };
        self.expect(Token::Open, "`(` after the function name")?;
        let inputs = self.params(0)?;
        while self.eat_word(&MODIFIERS) {}
        if self.eat_word(&["returns"]) {
            // Checked like the inputs, then dropped: outputs are not part of the selector.
            self.expect(Token::Open, "`(` after `returns`")?;
            self.params(0)?;
        }
        if self.peek().0 == Token::Semicolon {
            self.bump();
        }
        match self.bump() {
            (Token::End, _) => Ok((name, inputs)),
            (token, at) => Err(unexpected(token, at, "the end of the signature")),
        }
    }

    /// Parameters up to and including the closing `)`, whose `(` was just read. `nesting` counts
    /// the tuples around them, which bounds the recursion.
    fn params(&mut self, nesting: usize) -> Result<Vec<Param>> {
        let mut params = Vec::new();
        let mut names = HashSet::new();
        if self.peek().0 == Token::Close {
            self.bump();
            return Ok(params);
        }
        let mut size = 0usize;
        loop {
            let at = self.peek().1;
            let param = self.param(nesting)?;
            if param.ty.depth() > MAX_TYPE_DEPTH {
                return Err(error(at, SignatureProblem::TooDeep));
            }
            size = param
                .ty
                .min_encoded_size()
                .and_then(|s| size.checked_add(s))
                .filter(|&s| s <= MAX_CALLDATA_BYTES - 4)
                .ok_or_else(|| error(at, SignatureProblem::TooLarge))?;
            if let Some(name) = &param.name
                && !names.insert(name.clone())
            {
                return Err(error(at, SignatureProblem::DuplicateName(name.clone())));
            }
            params.push(param);
            match self.bump() {
                (Token::Comma, _) => {}
                (Token::Close, _) => return Ok(params),
                (token, at) => {
                    return Err(unexpected(token, at, "`,` or `)` after a parameter"));
                }
            }
        }
    }

    /// `type [payable] [location] [name]`
    fn param(&mut self, nesting: usize) -> Result<Param> {
        let ty = self.ty(nesting)?;
        if ty == Type::Address {
            self.eat_word(&["payable"]);
        }
        self.eat_word(&LOCATIONS);
        let name = match self.peek() {
            (Token::Word(word), at) => {
                self.bump();
                Some(identifier(word, at)?)
            }
            _ => None,
        };
        Ok(Param { name, ty })
    }

    /// An elementary type or a tuple, then any array dimensions.
    fn ty(&mut self, nesting: usize) -> Result<Type> {
        let (token, at) = self.bump();
        let tuple = match token {
            Token::Open => true,
            Token::Word("tuple") => {
                self.expect(Token::Open, "`(` after `tuple`")?;
                true
            }
            _ => false,
        };
        let mut ty = if tuple {
            if nesting >= MAX_TYPE_DEPTH {
                return Err(error(at, SignatureProblem::TooDeep));
            }
            let components = self.params(nesting + 1)?;
            if components.is_empty() {
                return Err(error(at, SignatureProblem::EmptyTuple));
            }
            Type::Tuple(components)
        } else {
            match token {
                Token::Word(word) => elementary(word, at)?,
                other => return Err(unexpected(other, at, "a type")),
            }
        };
        while self.peek().0 == Token::OpenBracket {
            self.bump();
            ty = match self.bump() {
                (Token::CloseBracket, _) => Type::Array(Box::new(ty)),
                (Token::Word(word), at) => {
                    let len = word
                        .parse::<usize>()
                        .ok()
                        .filter(|&len| len > 0 && word.bytes().all(|b| b.is_ascii_digit()))
                        .ok_or_else(|| {
                            error(at, SignatureProblem::BadArrayLength(word.to_owned()))
                        })?;
                    self.expect(Token::CloseBracket, "`]` after the array length")?;
                    Type::FixedArray(Box::new(ty), len)
                }
                (token, at) => return Err(unexpected(token, at, "an array length or `]`")),
            };
            if ty.depth() > MAX_TYPE_DEPTH {
                return Err(error(at, SignatureProblem::TooDeep));
            }
        }
        Ok(ty)
    }
}

fn unexpected(token: Token<'_>, at: usize, expected: &'static str) -> AbiError {
    error(
        at,
        SignatureProblem::Expected {
            expected,
            found: token.describe(),
        },
    )
}

fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$'
}

fn identifier(word: &str, at: usize) -> Result<String> {
    if word.len() > MAX_NAME_BYTES {
        return Err(error(at, SignatureProblem::NameTooLong));
    }
    if word.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(error(at, SignatureProblem::BadName(word.to_owned())));
    }
    Ok(word.to_owned())
}

fn elementary(word: &str, at: usize) -> Result<Type> {
    let ty = match word {
        "address" => Some(Type::Address),
        "bool" => Some(Type::Bool),
        "string" => Some(Type::String),
        "bytes" => Some(Type::Bytes),
        "uint" => Some(Type::Uint(256)),
        "int" => Some(Type::Int(256)),
        _ => sized(word, "uint", Type::Uint)
            .or_else(|| sized(word, "int", Type::Int))
            .or_else(|| sized(word, "bytes", Type::FixedBytes)),
    };
    let valid = |ty: &Type| match *ty {
        Type::Uint(bits) | Type::Int(bits) => (8..=256).contains(&bits) && bits % 8 == 0,
        Type::FixedBytes(len) => (1..=32).contains(&len),
        _ => true,
    };
    if let Some(ty) = ty.filter(valid) {
        return Ok(ty);
    }
    let hint = if word.starts_with("uint") || word.starts_with("int") {
        ": integer sizes are multiples of 8 from 8 to 256"
    } else if word.starts_with("bytes") {
        ": bytesN takes N from 1 to 32"
    } else if word.starts_with("fixed") || word.starts_with("ufixed") {
        ": fixed-point types are not supported"
    } else if word == "function" {
        ": function types are not supported"
    } else {
        ""
    };
    Err(error(
        at,
        SignatureProblem::UnknownType {
            name: word.to_owned(),
            hint,
        },
    ))
}

/// `uint64` -> `Uint(64)`; `None` unless `word` is `prefix` then a number in canonical decimal.
fn sized(word: &str, prefix: &str, make: fn(usize) -> Type) -> Option<Type> {
    let digits = word.strip_prefix(prefix)?;
    let size = digits.parse::<usize>().ok()?;
    (size.to_string() == digits).then(|| make(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Function {
        Function::parse(text).unwrap()
    }

    fn problem(text: &str) -> String {
        Function::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn the_three_spellings_of_transfer_agree() {
        for text in [
            "transfer(address,uint256)",
            "transfer(address to, uint256 amount)",
            "function transfer(address to, uint256 amount) external returns (bool)",
            "  function transfer(\n\taddress to,\n\tuint amount\n) external returns (bool success);",
            "transfer(address payable to, uint256 amount) public",
        ] {
            let function = parse(text);
            assert_eq!(function.signature(), "transfer(address,uint256)", "{text}");
            assert_eq!(function.selector(), [0xa9, 0x05, 0x9c, 0xbb], "{text}");
            assert_eq!(function.name(), "transfer");
        }
        assert_eq!(
            parse("transfer(address to, uint amount)").named_signature(),
            "transfer(address to,uint256 amount)"
        );
    }

    #[test]
    fn tuples_arrays_and_locations_are_canonicalized() {
        let function = parse(
            "function f((address to, uint256 amount)[] calldata moves, uint[2][] memory m, \
             tuple(bool, bytes3)[1] t, int x, bytes memory b, string s)",
        );
        assert_eq!(
            function.signature(),
            "f((address,uint256)[],uint256[2][],(bool,bytes3)[1],int256,bytes,string)"
        );
        assert_eq!(
            function.named_signature(),
            "f((address to,uint256 amount)[] moves,uint256[2][] m,(bool,bytes3)[1] t,int256 x,bytes b,string s)"
        );
        let Type::Array(inner) = &function.inputs()[0].ty else {
            panic!("not an array: {:?}", function.inputs()[0].ty);
        };
        assert!(matches!(&**inner, Type::Tuple(c) if c[1].name.as_deref() == Some("amount")));
        assert_eq!(parse("deposit()").signature(), "deposit()");
        assert_eq!(parse("deposit()").selector(), [0xd0, 0xe3, 0x0d, 0xb0]);
    }

    #[test]
    fn malformed_signatures_say_what_and_where() {
        for (text, message) in [
            (
                "",
                "invalid function signature at character 1: the signature is empty",
            ),
            (
                "transfer(address,uint257)",
                "invalid function signature at character 18: `uint257` is not a Solidity type: integer sizes are multiples of 8 from 8 to 256",
            ),
            (
                "transfer(address to uint256)",
                "invalid function signature at character 21: expected `,` or `)` after a parameter, found `uint256`",
            ),
            (
                "transfer(address,",
                "invalid function signature at character 18: expected a type, found the end of the signature",
            ),
            (
                "(address)",
                "invalid function signature at character 1: expected a function name, found `(`",
            ),
            (
                "transfer address",
                "invalid function signature at character 10: expected `(` after the function name, found `address`",
            ),
            (
                "f(()[])",
                "invalid function signature at character 3: `()` is not a parameter type: a tuple needs at least one component",
            ),
            (
                "f(uint256[0])",
                "invalid function signature at character 11: `0` is not an array length: expected a whole number from 1",
            ),
            (
                "f(uint256[-1])",
                "invalid function signature at character 11: expected a name, a type or punctuation among ( ) [ ] , ;, found `-`",
            ),
            (
                "f(bytes33)",
                "invalid function signature at character 3: `bytes33` is not a Solidity type: bytesN takes N from 1 to 32",
            ),
            (
                "f(fixed128x18)",
                "invalid function signature at character 3: `fixed128x18` is not a Solidity type: fixed-point types are not supported",
            ),
            (
                "f(uint08)",
                "invalid function signature at character 3: `uint08` is not a Solidity type: integer sizes are multiples of 8 from 8 to 256",
            ),
            (
                "f(address to, uint256 to)",
                "invalid function signature at character 15: the parameter name `to` is used twice",
            ),
            (
                "f(address 2x)",
                "invalid function signature at character 11: `2x` is not a valid name: names are letters, digits, `_` and `$`, not starting with a digit",
            ),
            (
                "f(address) returns",
                "invalid function signature at character 19: expected `(` after `returns`, found the end of the signature",
            ),
            (
                "f(address) extra",
                "invalid function signature at character 12: expected the end of the signature, found `extra`",
            ),
            (
                "f(address é)",
                "invalid function signature at character 11: only printable ASCII is allowed",
            ),
            (
                "f(uint256[4294967296])",
                "invalid function signature at character 3: the parameters cannot fit in 131072 bytes of calldata",
            ),
        ] {
            assert_eq!(problem(text), message, "{text}");
        }
    }

    #[test]
    fn depth_and_size_are_bounded() {
        let ok = format!("f(uint256{})", "[]".repeat(MAX_TYPE_DEPTH));
        assert!(Function::parse(&ok).is_ok());
        let deep = format!("f(uint256{})", "[]".repeat(MAX_TYPE_DEPTH + 1));
        assert!(problem(&deep).ends_with("types nest more than 16 levels deep"));
        let nested = format!("f({}uint256{})", "(".repeat(40), ")".repeat(40));
        assert!(problem(&nested).ends_with("types nest more than 16 levels deep"));
        // A million nested parentheses fail on length, before any recursion.
        let huge = format!("f({}", "(".repeat(1_000_000));
        assert!(problem(&huge).ends_with("the signature is longer than 4096 bytes"));
        // Each of these fits, but together they do not.
        let wide = format!("f({})", ["uint256[2048]"; 3].join(","));
        assert!(problem(&wide).ends_with("cannot fit in 131072 bytes of calldata"));
        assert!(
            problem(&format!("f(address {})", "a".repeat(65))).ends_with("at most 64 characters")
        );
        assert!(problem("f(uint256[99999999999999999999999])").contains("not an array length"));
    }
}
