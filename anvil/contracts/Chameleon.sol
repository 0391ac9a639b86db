// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// A token whose words its deployer rewrites at will, for keyward's prompt-injection corpus
/// (fixtures/injection/corpus.json). `set(text, times)` makes `name()`, `symbol()` and the revert
/// reason of `transfer` all equal to `text` repeated `times` times. The text is built in memory
/// on every read, so a one-megabyte name costs no megabyte of storage, and it is returned in
/// place rather than copied again by the ABI encoder, which keeps a megabyte within Anvil's call
/// gas cap. `transfer` always reverts; `approve` always succeeds, so an approval of this token can
/// be filed and its page read.
contract Chameleon {
    address private immutable owner = msg.sender;
    bytes private seed;
    uint256 private times;

    mapping(address => mapping(address => uint256)) public allowance;

    event Approval(address indexed owner, address indexed spender, uint256 value);

    function set(bytes calldata text, uint256 repeat) external {
        require(msg.sender == owner, "Chameleon: only the deployer sets the text");
        seed = text;
        times = repeat;
    }

    function name() external view returns (string memory) {
        _answer(false);
    }

    function symbol() external view returns (string memory) {
        _answer(false);
    }

    function decimals() external pure returns (uint8) {
        return 18;
    }

    function totalSupply() external pure returns (uint256) {
        return 1e27;
    }

    function balanceOf(address) external pure returns (uint256) {
        return 1e24;
    }

    function transfer(address, uint256) external view returns (bool) {
        _answer(true);
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    /// Returns, or reverts with `Error(string)` carrying, the seed repeated: written once, then
    /// doubled with `mcopy` until it is long enough, so a megabyte takes about twenty copies.
    /// It never returns to its caller.
    function _answer(bool asRevert) private view {
        bytes memory text = seed;
        uint256 length = text.length * times;
        assembly {
            let out := mload(0x40)
            let body := out
            if asRevert {
                // The selector of Error(string).
                mstore(out, shl(224, 0x08c379a0))
                body := add(out, 4)
            }
            mstore(body, 0x20)
            mstore(add(body, 0x20), length)
            let data := add(body, 0x40)
            if gt(length, 0) {
                mcopy(data, add(text, 0x20), mload(text))
                let filled := mload(text)
                for {} lt(filled, length) {} {
                    let n := filled
                    if gt(n, sub(length, filled)) { n := sub(length, filled) }
                    mcopy(add(data, filled), data, n)
                    filled := add(filled, n)
                }
            }
            // Zero padding up to a whole word.
            mstore(add(data, length), 0)
            let size := add(sub(data, out), and(add(length, 31), not(31)))
            if asRevert { revert(out, size) }
            return(out, size)
        }
    }
}
