// Run after `vite build` (npm run build): writes NAME.gz beside each built asset worth
// compressing, which webui/embed.go serves as is, so that the first visitor after a node starts
// does not wait for a compression.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const dir = join(import.meta.dirname, "dist", "assets");
for (const name of readdirSync(dir)) {
  if (!/\.(js|css|svg)$/.test(name)) continue;
  const body = readFileSync(join(dir, name));
  if (body.length > 1024) writeFileSync(join(dir, `${name}.gz`), gzipSync(body, { level: 9 }));
}
