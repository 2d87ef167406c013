/**
 * The house's layout, checked: each package's README says what it may import ("May
 * import: ..."), and this holds it to that. The rules form layers with proto at the bottom
 * and nothing above cli; package.json dependencies and every import in the sources follow
 * them; tests import their own package, what it may import, and the test kit; no module
 * imports itself back through a cycle (type-only imports count); barrels re-export by name.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { repoPath, repoRoot } from "@trainfleet/testing/manifests";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const packages: string[] = (JSON.parse(readFileSync(repoPath("package.json"), "utf8")) as { workspaces: string[] }).workspaces;

/** The packages `name` may import, from the "May import:" line of its README. */
function allowedImports(name: string): Set<string> {
  const readme = readFileSync(repoPath(name, "README.md"), "utf8");
  const line = /^May import: (.*)$/m.exec(readme)?.[1];
  if (line === undefined) throw new Error(`${name}/README.md has no "May import:" line`);
  return new Set(line.startsWith("nothing") ? [] : line.replace(/\.$/, "").split(", "));
}
const rules = new Map(packages.map((name) => [name, allowedImports(name)]));

function typeScriptFiles(dir: string): string[] {
  const files: string[] = [];
  if (!existsSync(dir)) return files;
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (entry === "node_modules" || entry === "dist" || entry === "gen") continue;
    if (statSync(path).isDirectory()) files.push(...typeScriptFiles(path));
    else if (entry.endsWith(".ts") && !entry.endsWith(".d.ts")) files.push(path);
  }
  return files;
}

/** Every module specifier a file imports or re-exports, static or dynamic, type-only included. */
function importsOf(file: string): string[] {
  return ts.preProcessFile(readFileSync(file, "utf8"), true, true).importedFiles.map((imported) => imported.fileName);
}

const ourPackage = (specifier: string): string | undefined => /^@trainfleet\/([a-z0-9-]+)/.exec(specifier)?.[1];
const where = (file: string) => relative(repoRoot, file);

describe("package layers", () => {
  it("every package says in its README what it holds and what it may import, naming only packages of this repo", () => {
    for (const name of packages) {
      const lines = readFileSync(repoPath(name, "README.md"), "utf8").trim().split("\n");
      expect(lines[0], `${name}/README.md's title`).toBe(`# @trainfleet/${name}`);
      expect(lines.length, `${name}/README.md: a line on what it holds, one on what it may import`).toBeGreaterThanOrEqual(3);
      for (const allowed of rules.get(name)!) expect(packages, `${name}/README.md names ${allowed}`).toContain(allowed);
    }
  });

  it("are layered: proto at the bottom, no package allowed to import one that may import it back, nothing importing cli", () => {
    expect(rules.get("proto")!.size).toBe(0);
    // Depth-first: a package may only be reached again through a path that left it (a cycle).
    const visiting = new Set<string>();
    const done = new Set<string>();
    const visit = (name: string, path: string[]) => {
      if (done.has(name)) return;
      if (visiting.has(name)) expect.fail(`packages import in a cycle: ${[...path, name].join(" -> ")}`);
      visiting.add(name);
      for (const next of rules.get(name)!) visit(next, [...path, name]);
      visiting.delete(name);
      done.add(name);
    };
    for (const name of packages) visit(name, []);
    for (const [name, allowed] of rules) expect(allowed.has("cli"), `${name} may import cli`).toBe(false);
  });

  it("declare in package.json exactly the trainfleet packages their sources import, all of them allowed", () => {
    for (const name of packages) {
      const manifest = JSON.parse(readFileSync(repoPath(name, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
      const declared = new Set(
        Object.keys(manifest.dependencies ?? {})
          .map(ourPackage)
          .filter((dep) => dep !== undefined),
      );
      const imported = new Set<string>();
      for (const file of typeScriptFiles(repoPath(name, "src"))) {
        for (const specifier of importsOf(file)) {
          const dep = ourPackage(specifier);
          if (dep !== undefined && dep !== name) imported.add(dep);
        }
      }
      for (const dep of declared)
        expect(rules.get(name)!.has(dep), `${name}/package.json depends on ${dep}, which its README does not allow`).toBe(true);
      expect([...imported].sort(), `${name}: the trainfleet packages its sources import`).toEqual([...declared].sort());
    }
  });

  it("import only what their layer allows, and never another package's files by path", () => {
    const broken: string[] = [];
    for (const name of packages) {
      for (const folder of ["src", "test"]) {
        const allowed = new Set([...rules.get(name)!, name, ...(folder === "test" ? ["testing"] : [])]);
        for (const file of typeScriptFiles(repoPath(name, folder))) {
          for (const specifier of importsOf(file)) {
            const dep = ourPackage(specifier);
            if (dep !== undefined && !allowed.has(dep)) broken.push(`${where(file)} imports ${specifier}`);
            if (specifier.startsWith(".") && !join(dirname(file), specifier).startsWith(`${repoPath(name)}/`))
              broken.push(`${where(file)} reaches out of ${name}/ with ${specifier}`);
            if (folder === "src" && dep === name) broken.push(`${where(file)} imports its own package by name (${specifier})`);
          }
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it("keep the multi-process suites in test/ off the benchmarks, and the benchmarks off the tests", () => {
    const broken: string[] = [];
    for (const file of typeScriptFiles(repoPath("test"))) {
      for (const specifier of importsOf(file))
        if (ourPackage(specifier) === "bench" || specifier.includes("/bench/")) broken.push(`${where(file)} imports ${specifier}`);
    }
    for (const file of typeScriptFiles(repoPath("bench", "src"))) {
      for (const specifier of importsOf(file)) if (specifier.includes("/test/")) broken.push(`${where(file)} imports ${specifier}`);
    }
    expect(broken).toEqual([]);
  });
});

describe("modules", () => {
  it("import each other without cycles inside every package, type-only imports included", () => {
    const cycles: string[] = [];
    for (const name of packages) {
      const files = typeScriptFiles(repoPath(name, "src"));
      const edges = new Map<string, string[]>();
      for (const file of files) {
        const targets = importsOf(file)
          .filter((specifier) => specifier.startsWith("."))
          .map((specifier) => join(dirname(file), specifier).replace(/\.js$/, ".ts"));
        edges.set(file, targets);
      }
      const state = new Map<string, "visiting" | "done">();
      const visit = (file: string, path: string[]) => {
        const seen = state.get(file);
        if (seen === "done") return;
        if (seen === "visiting") {
          cycles.push([...path.slice(path.indexOf(file)), file].map(where).join(" -> "));
          return;
        }
        state.set(file, "visiting");
        for (const next of edges.get(file) ?? []) visit(next, [...path, file]);
        state.set(file, "done");
      };
      for (const file of files) visit(file, []);
    }
    expect(cycles).toEqual([]);
  });

  it("re-export by name: no `export *` in hand-written sources", () => {
    const starred: string[] = [];
    for (const name of packages) {
      for (const file of typeScriptFiles(repoPath(name, "src"))) {
        if (/^export \* from /m.test(readFileSync(file, "utf8"))) starred.push(where(file));
      }
    }
    expect(starred).toEqual([]);
  });
});
