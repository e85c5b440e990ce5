// Reads Atrium's catalog with Backstage's own client and prints what it got as JSON.
// Usage: node read_catalog.mjs <portal base URL> <bearer token>
import { CatalogClient } from '@backstage/catalog-client';

const [base, token] = process.argv.slice(2);
const client = new CatalogClient({
  discoveryApi: { getBaseUrl: async () => `${base}/api/catalog` },
  fetchApi: {
    fetch: (input, init = {}) =>
      fetch(input, {
        ...init,
        headers: { ...(init.headers ?? {}), Authorization: `Bearer ${token}` },
      }),
  },
});

const names = entities => entities.map(entity => entity?.metadata?.name ?? null);

const experimental = await client.getEntities({
  filter: [{ kind: 'Component', 'spec.lifecycle': 'experimental' }],
  fields: ['metadata.name', 'kind'],
});
const payments = await client.getEntityByRef('component:default/payments-api');
const missing = await client.getEntityByRef('component:default/nope');
const first = await client.queryEntities({
  filter: { kind: 'component' },
  limit: 4,
  orderFields: { field: 'metadata.name', order: 'asc' },
});
const second = await client.queryEntities({ cursor: first.pageInfo.nextCursor, limit: 4 });
const byRefs = await client.getEntitiesByRefs({
  entityRefs: ['api:default/events', 'component:default/nope', 'group:default/team-data'],
});
const facets = await client.getEntityFacets({
  facets: ['kind'],
  filter: { 'spec.owner': 'team-payments' },
});
const search = await client.queryEntities({ fullTextFilter: { term: 'pay' }, limit: 50 });

console.log(
  JSON.stringify({
    experimental: names(experimental.items),
    experimentalKeys: Object.keys(experimental.items[0] ?? {}).sort(),
    payments: {
      name: payments?.metadata?.name,
      uid: payments?.metadata?.uid,
      owner: payments?.spec?.owner,
      relations: (payments?.relations ?? []).map(r => `${r.type} ${r.targetRef}`).sort(),
    },
    missing: missing ?? null,
    firstPage: names(first.items),
    totalItems: first.totalItems,
    secondPage: names(second.items),
    byRefs: names(byRefs.items),
    facets: facets.facets,
    search: names(search.items).sort(),
  }),
);
