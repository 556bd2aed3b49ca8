/** Run `fn` over items, at most `jobs` at a time; the first failure rejects (the others finish their current item). */
export async function pool<T>(items: readonly T[], jobs: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(jobs, items.length) }, worker));
}
