/**
 * What `gptspam serve` says about a newly created access token. The token itself goes only to a terminal: under
 * a service manager stderr is a journal or a log file, which other people and tools read, so there only the
 * token file's path is printed.
 */
export function tokenNotice(token: string, path: string, stderrIsTerminal: boolean): string {
  if (stderrIsTerminal) return `gptspam: your access token (shown once; kept in ${path}):\n\n    ${token}\n`;
  return `gptspam: an access token was created; the web page asks for it: read it from ${path} (readable by you only)`;
}
