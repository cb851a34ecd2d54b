/** `iflow check [dir]`: validates every flow and prints each error. */
export async function checkCommand(_dir?: string): Promise<number> {
  console.error('iflow check: not implemented yet');
  return 1;
}
