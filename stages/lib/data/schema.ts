/** Column names of the lead data set, in one place so a typo is a compile error. */

export const RAW_COLUMNS = [
  'lead_id', 'lead_indicator', 'date_part', 'is_active', 'marketing_consent', 'first_booking',
  'existing_customer', 'last_seen', 'source', 'domain', 'country', 'visited_learn_more_before_booking',
  'visited_faq', 'purchases', 'time_spent', 'customer_group', 'onboarding', 'customer_code', 'n_visits',
] as const;

export const CATEGORICAL_COLUMNS = [
  'lead_id', 'lead_indicator', 'date_part', 'source', 'customer_group', 'onboarding', 'customer_code',
] as const;
export type CategoricalColumn = (typeof CATEGORICAL_COLUMNS)[number];

export const CONTINUOUS_COLUMNS = ['purchases', 'time_spent', 'n_visits'] as const;
export type ContinuousColumn = (typeof CONTINUOUS_COLUMNS)[number];

/**
 * The cleaned table's columns, in the notebook's order: the categoricals, the
 * continuous columns, then the derived bin_source.
 */
export const CLEAN_COLUMNS = [...CATEGORICAL_COLUMNS, ...CONTINUOUS_COLUMNS, 'bin_source'] as const;

export type BinSource = 'socials' | 'group1';
export const SOURCE_BINS: Readonly<Record<string, BinSource>> = { li: 'socials', fb: 'socials', organic: 'group1', signup: 'group1' };

/** The model's input, in this order; the validator's files use the same names. */
export const FEATURE_COLUMNS = [
  'purchases', 'time_spent', 'n_visits',
  'customer_group_2', 'customer_group_3', 'customer_group_4', 'customer_group_5',
  'customer_group_6', 'customer_group_7', 'customer_group_8', 'customer_group_9',
  'onboarding_True',
] as const;

export const TARGET_COLUMN = 'lead_indicator';

/** Columns one-hot encoded into features (first sorted category dropped). */
export const ONE_HOT_COLUMNS = ['customer_group', 'onboarding', 'bin_source', 'source'] as const;
export type OneHotColumn = (typeof ONE_HOT_COLUMNS)[number];
