/**
 * The docs, checked against the tree and the binary: README.md and every docs/*.md.
 *
 * - links: every relative link `[text](path)` or `(path#anchor)` names a file or folder that
 *   exists, and every `#anchor` is a heading of the target (GitHub's slugs);
 * - paths: every repo path written as code (inline or in a fenced block) that starts with a
 *   top-level folder of the repo and contains '/' exists. A token with a glob or placeholder
 *   character (`* ? [ ] { } < > $ |`) or a segment in capitals (NAME, JOB_FOLDER) is skipped;
 * - commands: every `trainfleet <command>` written as code (also `npm run trainfleet -- <command>`)
 *   is a command of `trainfleet --help`, and every flag after it on the same code line is one
 *   of that command's `--help` (`npm start -- flags` are `trainfleet run`'s); every
 *   `npm run <script>` is a script of package.json;
 * - layout: README's Layout section names every top-level folder and nothing that is not one.
 *
 * It reads the built binary (cli/dist/main.js): `npm test` builds first.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const cli = join(root, "cli", "dist", "main.js");

const docFiles = [
  "README.md",
  ...readdirSync(join(root, "docs"))
    .filter((name) => name.endsWith(".md"))
    .sort()
    .map((name) => `docs/${name}`),
];

/** Top-level folders of the repo: not hidden, not ignored by a `name/` or `/name/` line of .gitignore. */
const ignored = new Set(
  readFileSync(join(root, ".gitignore"), "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => /^\/?[\w.-]+\/$/.test(line))
    .map((line) => line.replace(/^\//, "").replace(/\/$/, "")),
);
const topFolders = readdirSync(root).filter(
  (name) => !name.startsWith(".") && !ignored.has(name) && statSync(join(root, name)).isDirectory(),
);

interface CodeLine {
  /** 1-based line of the file where the code starts. */
  line: number;
  text: string;
}

interface Doc {
  file: string;
  text: string;
  /** The text with fenced code blocks blanked (line count kept). */
  prose: string;
  /** Each line of a fenced code block, and each inline code span (newlines made spaces). */
  code: CodeLine[];
  /** Headings outside code blocks, as written. */
  headings: string[];
}

const lineAt = (text: string, offset: number): number => text.slice(0, offset).split("\n").length;

function readDoc(file: string): Doc {
  const text = readFileSync(join(root, file), "utf8");
  const lines = text.split("\n");
  const code: CodeLine[] = [];
  const proseLines: string[] = [];
  let fence: string | undefined;
  lines.forEach((line, index) => {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence === undefined && marker !== undefined) {
      fence = marker;
      proseLines.push("");
    } else if (fence !== undefined && marker !== undefined && line.trim().startsWith(fence) && line.trim().replace(/[`~]/g, "") === "") {
      fence = undefined;
      proseLines.push("");
    } else if (fence !== undefined) {
      code.push({ line: index + 1, text: line });
      proseLines.push("");
    } else {
      proseLines.push(line);
    }
  });
  const prose = proseLines.join("\n");
  // Inline code: a run of backticks to the same run, not across a blank line.
  for (const match of prose.matchAll(/(`+)(?!`)((?:(?!\n\s*\n)[\s\S])+?)(?<!`)\1(?!`)/g)) {
    code.push({ line: lineAt(prose, match.index), text: match[2]!.replace(/\s*\n\s*/g, " ").trim() });
  }
  const headings = proseLines.flatMap((line) => /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1] ?? []);
  return { file, text, prose, code, headings };
}

const docs = docFiles.map(readDoc);

/** GitHub's anchor for a heading: markup dropped, lower-case, punctuation dropped, spaces to '-'. */
function slug(heading: string): string {
  const plain = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/`/g, "")
    .replace(/<[^>]+>/g, "");
  return plain
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/** Anchors of a markdown file, duplicates numbered as GitHub does (`name`, `name-1`, ...). */
function anchorsOf(file: string): Set<string> {
  const doc = docs.find((candidate) => candidate.file === file) ?? readDoc(file);
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const heading of doc.headings) {
    const base = slug(heading);
    const count = seen.get(base) ?? 0;
    anchors.add(count === 0 ? base : `${base}-${count}`);
    seen.set(base, count + 1);
  }
  return anchors;
}

function helpOf(args: string[]): string {
  const result = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: "utf8", timeout: 30_000 });
  if (result.status !== 0) throw new Error(`trainfleet ${args.join(" ")} exited ${result.status}: ${result.stderr}`);
  return result.stdout;
}

const helps = new Map<string, Set<string>>();
/** The flags (long and short) that `trainfleet <command> --help` lists. */
function flagsOf(command: string): Set<string> {
  let flags = helps.get(command);
  if (flags === undefined) {
    flags = new Set(["--help"]);
    for (const match of helpOf([command, "--help"]).matchAll(/^\s+(?:(-[A-Za-z]),\s+)?(--[a-z][\w-]*)/gm)) {
      if (match[1] !== undefined) flags.add(match[1]);
      flags.add(match[2]!);
    }
    helps.set(command, flags);
  }
  return flags;
}

/** A place in the docs and what is wrong there. */
const at = (doc: Doc, line: number, problem: string) => `${doc.file}:${line}: ${problem}`;

describe("docs", () => {
  it("README.md and docs/ hold the pages the README sends readers to", () => {
    expect(docFiles.length).toBeGreaterThan(1);
    expect(existsSync(cli), "cli/dist/main.js: build first (npx tsc -b)").toBe(true);
  });

  it("every relative link points at a file or folder that exists, and every #anchor at a heading there", () => {
    const failures: string[] = [];
    for (const doc of docs) {
      // Links in prose only: inside code, `[x](y)` is code. Inline code is blanked first.
      const prose = doc.prose.replace(/(`+)(?!`)((?:(?!\n\s*\n)[\s\S])+?)(?<!`)\1(?!`)/g, (span) => span.replace(/[^\n]/g, " "));
      for (const match of prose.matchAll(/!?\[(?:[^\]]|\n)*?\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
        const target = match[1]!;
        const line = lineAt(prose, match.index);
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
        const [pathPart = "", anchor] = target.split("#", 2) as [string, string | undefined];
        const targetFile = pathPart === "" ? doc.file : relative(root, resolve(root, dirname(doc.file), decodeURIComponent(pathPart)));
        if (targetFile.startsWith("..")) {
          failures.push(at(doc, line, `link ${target} leaves the repository`));
          continue;
        }
        if (!existsSync(join(root, targetFile))) {
          failures.push(at(doc, line, `link ${target}: ${targetFile} does not exist`));
          continue;
        }
        if (anchor === undefined) continue;
        if (!targetFile.endsWith(".md")) {
          failures.push(at(doc, line, `link ${target}: #${anchor} in a file that is not markdown`));
        } else if (!anchorsOf(targetFile).has(anchor)) {
          failures.push(at(doc, line, `link ${target}: ${targetFile} has no heading with anchor #${anchor}`));
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it("every repo path written as code exists", () => {
    const failures: string[] = [];
    const top = new RegExp(`^(?:\\./)?(?:${topFolders.map((name) => name.replace(/[.-]/g, "\\$&")).join("|")})/`);
    for (const doc of docs) {
      for (const { line, text } of doc.code) {
        for (const raw of text.split(/[\s=]+/)) {
          const token = raw.replace(/^[("'[]+/, "").replace(/[)"'\],;:.]+$/, "");
          if (!top.test(token)) continue;
          if (/[*?[\]{}<>$|]/.test(token)) continue; // a glob or a placeholder
          if (token.split("/").some((segment) => /^[A-Z][A-Z0-9_]*$/.test(segment))) continue; // NAME, JOB_FOLDER
          if (!existsSync(join(root, token))) failures.push(at(doc, line, `path ${token} does not exist`));
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it("every trainfleet command and its flags, as written in code, are in trainfleet --help; every npm script in package.json", () => {
    const commands = new Set([...helpOf(["--help"]).matchAll(/^ {2}([a-z][\w-]*) {2,}/gm)].map((match) => match[1]!));
    expect(commands.size, "trainfleet --help lists commands").toBeGreaterThan(0);
    const scripts = new Set(
      Object.keys((JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts),
    );
    const failures: string[] = [];
    for (const doc of docs) {
      for (const { line, text } of doc.code) {
        // A shell line ends at a comment or the next command.
        const segments = text.split(/\s#\s|\s#$|&&|\|\||;|\s\|\s|\s&(?:\s|$)/);
        for (const segment of segments) {
          for (const match of segment.matchAll(/npm run(?:\s+--silent)?\s+([\w:-]+)/g)) {
            if (!scripts.has(match[1]!)) failures.push(at(doc, line, `npm run ${match[1]}: no such script in package.json`));
          }
          let command: string | undefined;
          let rest = "";
          const mention = /(?:^|[\s/(])trainfleet\s+(?:--\s+)?([a-z][\w-]*)(?=$|[\s`,;.)\]])(.*)$/.exec(segment);
          if (mention !== undefined && mention !== null) {
            command = mention[1]!;
            rest = mention[2]!;
            if (!commands.has(command)) {
              failures.push(at(doc, line, `trainfleet ${command}: not a command of trainfleet --help (${[...commands].join(", ")})`));
              continue;
            }
          } else {
            const start = /npm start\s+--\s+(.*)$/.exec(segment);
            if (start === null) continue;
            command = "run";
            rest = start[1]!;
          }
          const known = flagsOf(command);
          for (const raw of rest.split(/\s+/)) {
            const flag = /^[[(]*(--?[A-Za-z][\w-]*)/.exec(raw)?.[1];
            if (flag === undefined || flag === "--") continue;
            if (!known.has(flag)) failures.push(at(doc, line, `trainfleet ${command} ${flag}: not a flag of trainfleet ${command} --help`));
          }
        }
      }
    }
    expect(failures).toEqual([]);
  }, 120_000);

  it("README's Layout section names every top-level folder, and only folders that exist", () => {
    const readme = docs[0]!;
    const start = readme.prose.split("\n").findIndex((line) => /^##\s+Layout\s*$/.test(line));
    expect(start, "README.md has a ## Layout section").toBeGreaterThanOrEqual(0);
    const lines = readme.text.split("\n");
    let end = lines.findIndex((line, index) => index > start && /^##\s/.test(line) && readme.prose.split("\n")[index] === line);
    if (end < 0) end = lines.length;
    const named = new Map<string, number>();
    for (let index = start + 1; index < end; index++) {
      // A folder named at the start of an item: "- `proto/`: ..." or "proto/   ..." in a block.
      const folder = /^(?:[-*]\s+)?`?([\w.-]+)\/`?/.exec(lines[index]!)?.[1];
      if (folder !== undefined && !named.has(folder)) named.set(folder, index + 1);
    }
    const failures: string[] = [];
    for (const [folder, line] of named) {
      if (!topFolders.includes(folder)) failures.push(at(readme, line, `Layout names ${folder}/, which is not a top-level folder`));
    }
    for (const folder of topFolders) {
      if (!named.has(folder)) failures.push(`README.md:${start + 1}: Layout leaves out ${folder}/`);
    }
    expect(failures).toEqual([]);
  });
});
