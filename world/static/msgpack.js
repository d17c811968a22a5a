// Minimal MessagePack encoder/decoder: the subset Hubbub's protocol uses (maps, arrays, strings,
// binary, integers, floats, booleans, nil). No build step, no dependencies.

const te = new TextEncoder();
const td = new TextDecoder();

export function encode(value) {
  const out = [];
  const push8 = (b) => out.push(b & 0xff);
  const pushN = (n, bytes) => { for (let i = bytes - 1; i >= 0; i--) push8(Number((BigInt(n) >> BigInt(8 * i)) & 0xffn)); };
  const pushBytes = (arr) => { for (const b of arr) out.push(b); };
  const enc = (v) => {
    if (v === null || v === undefined) push8(0xc0);
    else if (v === false) push8(0xc2);
    else if (v === true) push8(0xc3);
    else if (typeof v === 'number') {
      if (Number.isInteger(v) && v >= 0 && v < 2 ** 32) {
        if (v < 128) push8(v);
        else if (v < 256) { push8(0xcc); push8(v); }
        else if (v < 65536) { push8(0xcd); pushN(v, 2); }
        else { push8(0xce); pushN(v, 4); }
      } else if (Number.isInteger(v) && v < 0 && v >= -(2 ** 31)) {
        if (v >= -32) push8(v);
        else { push8(0xd2); pushN(v >>> 0, 4); }
      } else {
        push8(0xcb);
        const b = new DataView(new ArrayBuffer(8)); b.setFloat64(0, v);
        pushBytes(new Uint8Array(b.buffer));
      }
    } else if (typeof v === 'string') {
      const s = te.encode(v);
      if (s.length < 32) push8(0xa0 | s.length);
      else if (s.length < 256) { push8(0xd9); push8(s.length); }
      else if (s.length < 65536) { push8(0xda); pushN(s.length, 2); }
      else { push8(0xdb); pushN(s.length, 4); }
      pushBytes(s);
    } else if (v instanceof Uint8Array || v instanceof ArrayBuffer) {
      const b = v instanceof ArrayBuffer ? new Uint8Array(v) : v;
      if (b.length < 256) { push8(0xc4); push8(b.length); }
      else if (b.length < 65536) { push8(0xc5); pushN(b.length, 2); }
      else { push8(0xc6); pushN(b.length, 4); }
      pushBytes(b);
    } else if (Array.isArray(v)) {
      if (v.length < 16) push8(0x90 | v.length);
      else if (v.length < 65536) { push8(0xdc); pushN(v.length, 2); }
      else { push8(0xdd); pushN(v.length, 4); }
      v.forEach(enc);
    } else if (typeof v === 'object') {
      const keys = Object.keys(v).filter((k) => v[k] !== undefined);
      if (keys.length < 16) push8(0x80 | keys.length);
      else { push8(0xde); pushN(keys.length, 2); }
      for (const k of keys) { enc(k); enc(v[k]); }
    } else throw new TypeError(`cannot encode ${typeof v}`);
  };
  enc(value);
  return new Uint8Array(out);
}

export function decode(buffer) {
  const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const u8 = () => bytes[pos++];
  const take = (n) => { const s = bytes.subarray(pos, pos + n); pos += n; return s; };
  const str = (n) => td.decode(take(n));
  const bin = (n) => take(n).slice();  // a copy with its own, aligned buffer
  const arr = (n) => { const a = new Array(n); for (let i = 0; i < n; i++) a[i] = dec(); return a; };
  const map = (n) => { const m = {}; for (let i = 0; i < n; i++) { const k = dec(); m[k] = dec(); } return m; };
  const rd = (fn, size) => { const v = view[fn](pos); pos += size; return v; };
  const dec = () => {
    const b = u8();
    if (b < 0x80) return b;
    if (b >= 0xe0) return b - 256;
    if ((b & 0xf0) === 0x80) return map(b & 0x0f);
    if ((b & 0xf0) === 0x90) return arr(b & 0x0f);
    if ((b & 0xe0) === 0xa0) return str(b & 0x1f);
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return bin(u8());
      case 0xc5: return bin(rd('getUint16', 2));
      case 0xc6: return bin(rd('getUint32', 4));
      case 0xca: return rd('getFloat32', 4);
      case 0xcb: return rd('getFloat64', 8);
      case 0xcc: return u8();
      case 0xcd: return rd('getUint16', 2);
      case 0xce: return rd('getUint32', 4);
      case 0xcf: return Number(rd('getBigUint64', 8));
      case 0xd0: return rd('getInt8', 1);
      case 0xd1: return rd('getInt16', 2);
      case 0xd2: return rd('getInt32', 4);
      case 0xd3: return Number(rd('getBigInt64', 8));
      case 0xd9: return str(u8());
      case 0xda: return str(rd('getUint16', 2));
      case 0xdb: return str(rd('getUint32', 4));
      case 0xdc: return arr(rd('getUint16', 2));
      case 0xdd: return arr(rd('getUint32', 4));
      case 0xde: return map(rd('getUint16', 2));
      case 0xdf: return map(rd('getUint32', 4));
      default: throw new Error(`msgpack: unsupported type 0x${b.toString(16)}`);
    }
  };
  return dec();
}
