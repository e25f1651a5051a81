/** The README's reference names every method of every namespace of the client (read from the client itself). */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { Tollgate } from "../src/index.js";

// Compiled to build/test/: the README is two folders up from there, as from test/ (one up) in the source tree.
const README = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

function referenceRows(): string[] {
  const section = README.split("\n## Reference\n")[1]?.split("\n## ")[0] ?? "";
  return section.split("\n").filter((line) => line.startsWith("| `"));
}

function methods(namespace: object): string[] {
  const prototype = Object.getPrototypeOf(namespace) as object;
  return Object.getOwnPropertyNames(prototype).filter(
    (name) => name !== "constructor" && !name.startsWith("_") && typeof (namespace as Record<string, unknown>)[name] === "function",
  );
}

test("the reference lists every method of every namespace", () => {
  const tollgate = new Tollgate({ apiKey: "tg_sk_readme", baseUrl: "http://127.0.0.1:9" });
  const rows = referenceRows();
  const missing: string[] = [];
  for (const [name, namespace] of Object.entries(tollgate)) {
    if (name.startsWith("_") || typeof namespace !== "object" || namespace === null || name === "transport") {
      continue;
    }
    // The row the namespace heads (`plans` names `project` as a parameter), or the one it is nested in.
    const tag = `\`${name}\``;
    const row = rows.find((line) => (line.split("|")[1] ?? "").includes(tag)) ?? rows.find((line) => line.includes(tag));
    for (const method of methods(namespace)) {
      if (row === undefined || !row.includes(`\`${method}\``)) {
        missing.push(`${name}.${method}`);
      }
    }
  }
  assert.deepEqual(missing, []);
});
