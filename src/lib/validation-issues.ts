import type { ValidationIssue } from '../../schemas/common.js'
import { pointer } from './problem.js'
import type { AjvIssue } from './validation.js'

/** Every failing field of the failing part, as `{ in, path, message }`. */
export function validationIssues (part: ValidationIssue['in'], errors: AjvIssue[]): ValidationIssue[] {
  return errors.map((error) => {
    switch (error.keyword) {
      case 'required':
        return { in: part, path: error.instancePath + pointer(error.params.missingProperty), message: 'is required' }
      case 'additionalProperties':
        return { in: part, path: error.instancePath + pointer(error.params.additionalProperty), message: 'is not a known field' }
      case 'maxProperties':
        return { in: part, path: error.instancePath, message: `must have at most ${String(error.params.limit)} fields` }
      case 'type':
        return { in: part, path: error.instancePath, message: `must be ${[error.params.type].flat().join(' or ')}` }
      default:
        return { in: part, path: error.instancePath, message: error.message ?? 'is invalid' }
    }
  })
}
