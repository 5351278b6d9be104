// Search snippets mark each hit between U+0002 and U+0003; this turns them into parts that
// the template renders as text spans (never as HTML).
export interface SnippetPart {
  /** Position in the list of parts (a stable key for rendering). */
  at: number;
  text: string;
  hit: boolean;
}

const START = '\u0002';
const END = '\u0003';

export function snippetParts(snippet: string): SnippetPart[] {
  const parts: SnippetPart[] = [];
  let hit = false;
  let run = '';
  const flush = () => {
    if (run) parts.push({ at: parts.length, text: run, hit });
    run = '';
  };
  for (const char of snippet) {
    if (char === START || char === END) {
      flush();
      hit = char === START;
    } else {
      run += char;
    }
  }
  flush();
  return parts;
}
