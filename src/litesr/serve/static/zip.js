// A ZIP archive of finished results, made in the browser: the images are already here, and
// PNG/JPEG/WebP do not compress further, so entries are "stored" (no deflate, no library).
"use strict";

(function () {
  const CRC_TABLE = (() => {
    const table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
    return table;
  })();

  function crc32(bytes) {
    let crc = 0xffffffff;
    for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
    return (crc ^ 0xffffffff) >>> 0;
  }

  function dosDateTime(date) {
    const time = (date.getHours() << 11) | (date.getMinutes() << 5) | (date.getSeconds() >> 1);
    const day = ((date.getFullYear() - 1980) << 9) | ((date.getMonth() + 1) << 5) | date.getDate();
    return [time, day];
  }

  function header(size, fields) {
    const view = new DataView(new ArrayBuffer(size));
    let offset = 0;
    for (const [bytes, value] of fields) {
      if (bytes === 4) view.setUint32(offset, value, true);
      else view.setUint16(offset, value, true);
      offset += bytes;
    }
    return new Uint8Array(view.buffer);
  }

  // files: [{name, blob}] with distinct names; resolves to an application/zip Blob.
  async function makeZip(files) {
    const encoder = new TextEncoder();
    const [time, day] = dosDateTime(new Date());
    const UTF8_NAMES = 0x0800;
    const parts = [];
    const central = [];
    let offset = 0;
    for (const file of files) {
      const name = encoder.encode(file.name);
      const data = new Uint8Array(await file.blob.arrayBuffer());
      const crc = crc32(data);
      const local = header(30, [[4, 0x04034b50], [2, 20], [2, UTF8_NAMES], [2, 0], [2, time], [2, day],
        [4, crc], [4, data.length], [4, data.length], [2, name.length], [2, 0]]);
      parts.push(local, name, data);
      central.push(header(46, [[4, 0x02014b50], [2, 20], [2, 20], [2, UTF8_NAMES], [2, 0], [2, time], [2, day],
        [4, crc], [4, data.length], [4, data.length], [2, name.length], [2, 0], [2, 0], [2, 0], [2, 0],
        [4, 0], [4, offset]]), name);
      offset += local.length + name.length + data.length;
    }
    const centralSize = central.reduce((sum, part) => sum + part.length, 0);
    const end = header(22, [[4, 0x06054b50], [2, 0], [2, 0], [2, files.length], [2, files.length],
      [4, centralSize], [4, offset], [2, 0]]);
    return new Blob([...parts, ...central, end], { type: "application/zip" });
  }

  window.LiteSRZip = { makeZip, crc32 };
})();
