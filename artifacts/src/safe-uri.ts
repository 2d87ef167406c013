/**
 * A URL as it may appear in logs, errors and status: without `user:password@` and without
 * a query string that signs it (a presigned S3, GCS or Azure URL), since either lets
 * whoever reads the log fetch the file.
 */

/** Query parameters that carry a signature, a token or a key id. */
const SECRET_PARAMETER =
  /^(x-amz-(signature|credential|security-token)|x-goog-(signature|credential)|signature|sig|se|token|access_token|awsaccesskeyid|key)$/i;

export function redactUri(uri: string): string {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return uri;
  }
  url.username = "";
  url.password = "";
  if ([...url.searchParams.keys()].some((name) => SECRET_PARAMETER.test(name))) url.search = "";
  return url.toString();
}

/** The secrets inside `uri` (password, signature values), to scrub from messages a library wrote. */
export function secretsOf(uri: string): string[] {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return [];
  }
  const secrets = [url.password, decodeURIComponent(url.password), url.username, decodeURIComponent(url.username)];
  for (const [name, value] of url.searchParams) if (SECRET_PARAMETER.test(name)) secrets.push(value, encodeURIComponent(value));
  return [...new Set(secrets.filter((secret) => secret.length >= 4))];
}

/** `message` with every secret replaced by "***". */
export function scrub(message: string, secrets: readonly string[]): string {
  let out = message;
  for (const secret of secrets) out = out.replaceAll(secret, "***");
  return out;
}
