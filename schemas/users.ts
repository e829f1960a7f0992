import { Type, type Static } from '@sinclair/typebox'
import { DateTime, Defaulted, defineResource, Email, IdParamsSchema, Nullable, Page, PaginationQuery, problems, Ref, requires, StrictObject, StringEnum, Uuid } from './common.js'
import { errorsOfUploads, image, imageResponses, ImageUploadSchema, uploadBody } from './files.js'
import { cacheControlHeader, entityHeaders, noContent, pageResponse } from './http.js'

const FullName = Nullable(Type.String({ minLength: 1, maxLength: 200, description: 'Display name; null when not given', examples: ['Ada Lovelace'] }))
const Password = (description: string) => Type.String({ minLength: 8, maxLength: 128, writeOnly: true, description: `${description}; 8 to 128 characters` })

export const UserSchema = StrictObject({
  id: Uuid({ examples: ['0196f1c2-7a8b-7cde-8f01-23456789abcd'] }),
  email: Email({ examples: ['ada@example.com'] }),
  fullName: FullName,
  isActive: Type.Boolean({ description: 'Inactive users cannot log in; their tokens stop working' }),
  isSuperuser: Type.Boolean({ description: 'Superusers may be granted the `admin` scope' }),
  avatarUrl: Nullable(Type.String({ maxLength: 2000, description: 'Where the avatar image is served, if any' })),
  createdAt: DateTime(),
  updatedAt: DateTime()
}, {
  $id: 'User',
  title: 'User',
  description: 'An account. Passwords and their hashes are never returned.',
  examples: [{
    id: '0196f1c2-7a8b-7cde-8f01-23456789abcd',
    email: 'ada@example.com',
    fullName: 'Ada Lovelace',
    isActive: true,
    isSuperuser: false,
    avatarUrl: null,
    createdAt: '2025-05-01T12:00:00.000Z',
    updatedAt: '2025-05-01T12:00:00.000Z'
  }]
})

export const UserCreateSchema = StrictObject({
  email: Email({ description: 'Unique, compared without regard to case', examples: ['ada@example.com'] }),
  password: Password('The password'),
  fullName: Type.Optional(FullName)
}, {
  $id: 'UserCreate',
  title: 'UserCreate',
  examples: [{ email: 'ada@example.com', password: 'correct horse battery staple', fullName: 'Ada Lovelace' }]
})

export const UserUpdateSchema = StrictObject({
  email: Type.Optional(Email({ description: 'A new email; 409 when another account uses it' })),
  fullName: Type.Optional(FullName)
}, {
  $id: 'UserUpdate',
  title: 'UserUpdate',
  description: 'The fields to change; absent fields are left as they are, and a null `fullName` clears it.',
  examples: [{ fullName: 'Ada King' }]
})

export const UserAdminUpdateSchema = StrictObject({
  email: Type.Optional(Email({ description: 'A new email; 409 when another account uses it' })),
  fullName: Type.Optional(FullName),
  isActive: Type.Optional(Type.Boolean({ description: 'false ends every login of the user' })),
  isSuperuser: Type.Optional(Type.Boolean())
}, {
  $id: 'UserAdminUpdate',
  title: 'UserAdminUpdate',
  description: 'The fields to change; absent fields are left as they are. The last active superuser cannot be deactivated or demoted.',
  examples: [{ isActive: false }]
})

export const PasswordChangeSchema = StrictObject({
  currentPassword: Password('The password in use now'),
  newPassword: Password('The new password')
}, {
  $id: 'PasswordChange',
  title: 'PasswordChange',
  examples: [{ currentPassword: 'correct horse battery staple', newPassword: 'tr0ub4dor&3 but longer' }]
})

export const UserPageSchema = Page(UserSchema)

export const USER_SORTS = ['createdAt', '-createdAt', 'email', '-email'] as const

export const UserListQuerySchema = StrictObject({
  ...PaginationQuery,
  sort: Defaulted(StringEnum(USER_SORTS, { default: 'createdAt', description: 'Sort order; `-` means descending. The id breaks ties.' })),
  isActive: Type.Optional(Type.Boolean({ description: 'Only active (true) or inactive (false) users' })),
  isSuperuser: Type.Optional(Type.Boolean({ description: 'Only superusers (true) or ordinary users (false)' })),
  email: Type.Optional(Type.String({ minLength: 1, maxLength: 254, description: 'Only users whose email contains this text, regardless of case' }))
})

export type User = Static<typeof UserSchema>
export type UserCreate = Static<typeof UserCreateSchema>
export type UserUpdate = Static<typeof UserUpdateSchema>
export type UserAdminUpdate = Static<typeof UserAdminUpdateSchema>
export type UserListQuery = Static<typeof UserListQuerySchema>

export const usersResource = defineResource({
  tag: { name: 'users', description: 'Accounts: sign-up, your own profile, and user administration' },
  components: [UserSchema, UserCreateSchema, UserUpdateSchema, UserAdminUpdateSchema, PasswordChangeSchema, UserPageSchema, ImageUploadSchema],
  scopes: {
    profile: { description: 'Read and change your own account', byDefault: true },
    admin: { description: 'User administration; any user\'s items', superuserOnly: true }
  }
})

export const account = entityHeaders('account', '"0196f1c2-7a8b-7cde-8f01-23456789abcd.1746100800000"')
const privateNoStore = cacheControlHeader('private, no-store')

export const createUser = {
  operationId: 'createUser',
  tags: ['users'],
  summary: 'Sign up',
  description: 'Creates an account. Open to anyone unless sign-up is disabled (`ALLOW_SIGNUP=false`), ' +
    'in which case only a token with the `admin` scope may create users (403 otherwise).',
  body: Ref(UserCreateSchema),
  response: {
    201: account.created('The new user', UserSchema),
    ...problems(403, 409)
  }
} as const

export const getCurrentUser = {
  operationId: 'getCurrentUser',
  tags: ['users'],
  summary: 'Your account',
  description: 'The user the access token belongs to. Served with `Cache-Control: private, no-store`.',
  security: requires(['profile']),
  headers: account.ifNoneMatch,
  response: { 200: account.ok('Your account', UserSchema, privateNoStore), 304: account.notModified(privateNoStore), ...problems(403) }
} as const

export const updateCurrentUser = {
  operationId: 'updateCurrentUser',
  tags: ['users'],
  summary: 'Change your account',
  description: 'Changes your name or email. An email another account uses is 409.',
  security: requires(['profile']),
  body: Ref(UserUpdateSchema),
  response: { 200: account.ok('Your updated account', UserSchema, privateNoStore), ...problems(403, 409) }
} as const

export const changePassword = {
  operationId: 'changePassword',
  tags: ['users'],
  summary: 'Change your password',
  description: 'Sets a new password and ends every login of yours, this one included: log in again with the new password. ' +
    'A wrong `currentPassword` is 400.',
  security: requires(['profile']),
  body: Ref(PasswordChangeSchema),
  response: { 204: noContent('Changed; every login has ended'), ...problems(403) }
} as const

export const deleteCurrentUser = {
  operationId: 'deleteCurrentUser',
  tags: ['users'],
  summary: 'Delete your account',
  description: 'Deletes your account and everything it owns; its tokens stop working. The last active superuser cannot be deleted (409).',
  security: requires(['profile']),
  response: { 204: noContent('Deleted'), ...problems(403, 409) }
} as const

export const listUsers = {
  operationId: 'listUsers',
  tags: ['users'],
  summary: 'List users',
  description: 'A page of users, filtered and sorted. Pass `nextCursor` as `cursor`, with the same filters and sort, for the next page; ' +
    'the `Link` header carries the same as a ready URL.',
  security: requires(['admin']),
  querystring: UserListQuerySchema,
  response: {
    200: pageResponse('A page of users', UserPageSchema),
    ...problems(403)
  }
} as const

export const getUser = {
  operationId: 'getUser',
  tags: ['users'],
  summary: 'Get a user',
  description: 'Any user, by id.',
  security: requires(['admin']),
  params: IdParamsSchema,
  headers: account.ifNoneMatch,
  response: { 200: account.ok('The user', UserSchema), 304: account.notModified(), ...problems(403, 404) }
} as const

export const updateUser = {
  operationId: 'updateUser',
  tags: ['users'],
  summary: 'Change a user',
  description: 'Changes any user, including `isActive` (deactivating ends every login of the user) and `isSuperuser`. ' +
    'An email another account uses is 409; so is deactivating or demoting the last active superuser.',
  security: requires(['admin']),
  params: IdParamsSchema,
  body: Ref(UserAdminUpdateSchema),
  response: { 200: account.ok('The updated user', UserSchema), ...problems(403, 404, 409) }
} as const

export const deleteUser = {
  operationId: 'deleteUser',
  tags: ['users'],
  summary: 'Delete a user',
  description: 'Deletes any user and everything they own; their tokens stop working. The last active superuser cannot be deleted (409).',
  security: requires(['admin']),
  params: IdParamsSchema,
  response: { 204: noContent('Deleted'), ...problems(403, 404, 409) }
} as const

export const uploadAvatar = {
  operationId: 'uploadAvatar',
  tags: ['users'],
  summary: 'Set your avatar',
  description: 'Stores the image as your avatar, replacing (and deleting) any previous one; your `avatarUrl` then points at it. ' + errorsOfUploads,
  security: requires(['profile']),
  body: uploadBody,
  response: {
    200: account.ok('Your account, with its `avatarUrl`', UserSchema),
    ...problems(400, 403, 413, 415)
  }
} as const

export const getUserAvatar = {
  operationId: 'getUserAvatar',
  tags: ['users'],
  summary: 'Get a user\'s avatar',
  description: 'The avatar bytes as uploaded, with the content type recognised from them (what `avatarUrl` points at). ' +
    'Send the `ETag` back as `If-None-Match` to get 304 when it has not changed. 404 when the user does not exist or has no avatar.',
  params: IdParamsSchema,
  headers: image.ifNoneMatch,
  response: { ...imageResponses('avatar'), ...problems(400, 404) }
} as const
