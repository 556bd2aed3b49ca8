// Lint for the engine, the example app, the benches and the tests: typescript-eslint's recommended rules,
// with the few this codebase deliberately departs from turned off (each with its reason).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const COMMANDS = ['**/commands/*', '**/runner/commands'];
const COMMANDS_RE = '/(^|\\/)commands\\//';
const COMMANDS_MESSAGE = 'runner/commands/ only parses, calls and renders: import the engine module the command calls instead';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      '.lockstep/**',
      'data/**',
      'registry/**',
      'mlruns/**',
      'lockstep_plots/**',
      'drift/**',
      'tests/artifacts/**',
      'runner/ui/static/**',
      'bin/**',
      'scripts/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2022, sourceType: 'module' },
    rules: {
      // Unused names prefixed with _ are deliberate (destructuring to drop a field).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', destructuredArrayIgnorePattern: '^_' },
      ],
      // Tests and a few parsers handle untyped JSON; `any` there is explicit and local.
      '@typescript-eslint/no-explicit-any': 'off',
      // `!` after a lookup the code has just guaranteed is clearer than a redundant check.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Control characters in regular expressions are how we validate file names and terminal input.
      'no-control-regex': 'off',
      // A caught error is turned into a one-line user message on purpose: its cause is the message's text.
      'preserve-caught-error': 'off',
      // Empty catch blocks carry a comment saying why the error is ignored.
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  // Commands only parse, call the engine and render: the engine never imports a command (runner/cli.ts and the
  // commands themselves may). Both static imports and import() are checked.
  {
    files: ['**/*.ts'],
    ignores: ['runner/cli.ts', 'runner/commands/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: COMMANDS, message: COMMANDS_MESSAGE }] }],
      'no-restricted-syntax': ['error', { selector: `ImportExpression[source.value=${COMMANDS_RE}]`, message: COMMANDS_MESSAGE }],
    },
  },
  {
    // The example app reaches the engine through runner/api.ts only: everything else in runner/ is internal.
    files: ['stages/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/runner/*', '!**/runner/api.js'], message: 'the app uses the engine through runner/api.ts only (add an export there)' }] },
      ],
    },
  },
);
