/**
 * The layers of src/, lowest first: a module imports its own layer and those below it, never one above.
 * The folders below have a layer of their own; every other folder of src/ is a resource, so adding a resource
 * needs no change here.
 */
const LAYERED_FOLDERS = ['lib', 'db', 'realtime', 'plugins', 'auth', 'kit', 'cli']

/** @type {Array<{ name: string, path: string, comment: string }>} */
const LAYERS = [
  {
    name: 'base',
    path: '^(schemas/|src/(config|paths)\\.ts$)',
    comment: 'The contract (schemas/) and the config and paths every layer reads.'
  },
  {
    name: 'lib',
    path: '^src/lib/',
    comment: 'Shared helpers: they know nothing of the database layer, plugins, auth, kit or resources.'
  },
  {
    name: 'db',
    path: '^src/db/',
    comment: 'The connection, the tables and their errors.'
  },
  {
    name: 'realtime',
    path: '^src/realtime/',
    comment: 'The live channel: the outbox, the hub and its connections. Who a connection acts for is passed in.'
  },
  {
    name: 'plugins-and-auth',
    path: '^src/(plugins|auth)/',
    comment: 'Cross-cutting plugins, and authentication: they know no resource.'
  },
  {
    name: 'kit',
    path: '^src/kit/',
    comment: 'What resources are built from: registration, conditional reads and writes, pages, the owner-or-admin rule, route scopes.'
  },
  {
    name: 'resources',
    path: `^src/(?!(${LAYERED_FOLDERS.join('|')})/)[^/]+/`,
    comment: 'One folder per resource: its routes and its data access.'
  },
  {
    name: 'composition',
    path: '^src/((app|server|resources)\\.ts$|cli/)',
    comment: 'What builds and runs the app from every layer: the app, the server process, the command-line tools.'
  }
]

const layerRules = LAYERS.slice(0, -1).map((layer, index) => ({
  name: `${layer.name}-not-to-higher-layers`,
  comment: `${layer.comment} A ${layer.name} module imports no layer above it (${LAYERS.slice(index + 1).map(({ name }) => name).join(', ')}).`,
  severity: 'error',
  from: { path: layer.path },
  to: { path: LAYERS.slice(index + 1).map(({ path }) => path) }
}))

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'A cycle has no lowest module: none may be loaded or understood without the others.',
      severity: 'error',
      from: { path: '^(src|schemas)/' },
      to: { circular: true }
    },
    {
      name: 'schemas-not-to-src',
      comment: 'schemas/ is the contract, TypeBox values only: the server, the documents, the clients and the tests read it.',
      severity: 'error',
      from: { path: '^schemas/' },
      to: { path: '^src/' }
    },
    ...layerRules,
    {
      name: 'plugins-not-to-auth',
      comment: 'Authentication builds on the plugins (problems, the rate limit), never the other way round.',
      severity: 'error',
      from: { path: '^src/plugins/' },
      to: { path: '^src/auth/' }
    },
    {
      name: 'not-to-test',
      comment: 'Tests read the app; the app never reads the tests.',
      severity: 'error',
      from: { path: '^(src|schemas)/' },
      to: { path: '^test/' }
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import the cruiser cannot resolve would escape every rule above.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true }
    }
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Compiled next to the clients they call (generated, not committed) by npm run clients:check.
    exclude: { path: '^test/clients/flows/' },
    // Type-only imports count: a layer that names another's types depends on it too.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    // Resolve packages as Node does: some (orval) publish only `exports`.
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types']
    }
  }
}
