// RFC 9162 Merkle tree verification (§2.1.3.2 inclusion, §2.1.4.2 consistency), as
// trailkeep.merkle.verify does it. Sizes and indexes are BigInt so no bit trick wraps at 2**31.

import { equal, sha256, toHex } from "./bytes.js";

const LEAF = Uint8Array.of(0);
const NODE = Uint8Array.of(1);

export class ProofError extends Error {}

export const leafHash = (input) => sha256(LEAF, input);
export const nodeHash = (left, right) => sha256(NODE, left, right);

function checkHashes(proof) {
  proof.forEach((h, i) => {
    if (h.length !== 32) throw new ProofError(`proof[${i}] is ${h.length} bytes, not 32`);
  });
}

/** Check that `leaf` is at `index` in the tree of `size` leaves whose root is `root`. */
export async function verifyInclusion(index, size, leaf, proof, root) {
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  if (fn < 0n || fn > sn) throw new ProofError(`leaf index ${index} is not below tree size ${size}`);
  checkHashes(proof);
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) throw new ProofError("inclusion proof is longer than the tree is deep");
    if (fn % 2n === 1n || fn === sn) {
      r = await nodeHash(p, r);
      while (fn % 2n === 0n && fn !== 0n) {
        fn /= 2n;
        sn /= 2n;
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn /= 2n;
    sn /= 2n;
  }
  if (sn !== 0n) throw new ProofError("inclusion proof is shorter than the tree is deep");
  if (!equal(r, root)) {
    throw new ProofError(`the proof leads to root ${toHex(r)}, not the checkpoint's ${toHex(root)}`);
  }
}

/** Check that the tree of `size1` leaves (root `root1`) is a prefix of `size2` (`root2`). */
export async function verifyConsistency(size1, size2, proof, root1, root2) {
  const first = BigInt(size1);
  const second = BigInt(size2);
  if (first < 0n || first > second) throw new ProofError(`sizes ${size1} and ${size2} are out of order`);
  checkHashes(proof);
  if (first === second) {
    if (proof.length) throw new ProofError("a proof between equal sizes must be empty");
    if (!equal(root1, root2)) throw new ProofError(`two different roots for size ${size1}`);
    return;
  }
  if (first === 0n) {
    if (proof.length) throw new ProofError("a proof from the empty tree must be empty");
    if (!equal(root1, await sha256())) throw new ProofError("size 0 with a non-empty root");
    return;
  }
  if (!proof.length) throw new ProofError("empty consistency proof");
  const path = (first & (first - 1n)) === 0n ? [root1, ...proof] : proof;
  let fn = first - 1n;
  let sn = second - 1n;
  while (fn % 2n === 1n) {
    fn /= 2n;
    sn /= 2n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) throw new ProofError("consistency proof is too long");
    if (fn % 2n === 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while (fn % 2n === 0n && fn !== 0n) {
        fn /= 2n;
        sn /= 2n;
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn /= 2n;
    sn /= 2n;
  }
  if (sn !== 0n) throw new ProofError("consistency proof is too short");
  if (!equal(fr, root1)) throw new ProofError(`the proof does not lead to the older root ${toHex(root1)}`);
  if (!equal(sr, root2)) throw new ProofError(`the proof does not lead to the newer root ${toHex(root2)}`);
}

